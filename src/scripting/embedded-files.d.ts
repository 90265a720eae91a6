// Files embedded by `bun build --compile` through import attributes:
// `with { type: "text" }` gives the contents, `with { type: "file" }` a path.
declare module "*.lua" {
  const text: string;
  export default text;
}

declare module "*.wasm" {
  const path: string;
  export default path;
}
