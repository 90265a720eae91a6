/**
 * Builds the single-file executable: `bun run build` → dist/cacheismo (this machine's platform).
 * `bun run build --all` also cross-compiles the release targets into dist/cacheismo-<target>
 * and writes dist/SHA256SUMS; Bun fetches each target's runtime from the npm registry
 * (@oven/bun-<os>-<arch>) on first use and caches it. Everything the server needs (the Lua wasm,
 * the bundled Lua scripts) is imported by the source and so embedded: the executable runs alone.
 */
import { $ } from "bun";
import { mkdirSync, statSync } from "node:fs";
import { join } from "node:path";

const TARGETS = ["bun-linux-x64", "bun-linux-x64-baseline", "bun-linux-arm64", "bun-darwin-arm64", "bun-windows-x64"] as const;

const commit = (await $`git rev-parse --short HEAD`.nothrow().quiet()).stdout.toString().trim() || "unknown";
const outDir = join(import.meta.dir, "dist");
mkdirSync(outDir, { recursive: true });

/** Builds one executable; returns its path (Bun appends .exe for Windows). */
async function build(target: Bun.Build.CompileTarget | null, outfile: string): Promise<string> {
  const result = await Bun.build({
    // The worker thread's entry is compiled in beside main: new URL("./worker.ts", import.meta.url)
    // finds it inside the executable.
    entrypoints: [join(import.meta.dir, "src/main.ts"), join(import.meta.dir, "src/worker.ts")],
    compile: {
      outfile,
      ...(target ? { target } : {}),
      // A service must not pick up .env or bunfig.toml from whatever directory it runs in.
      autoloadDotenv: false,
      autoloadBunfig: false,
    },
    minify: true,
    // Precompiled bytecode halves exec-to-listening (bench/startup.ts, 30 interleaved runs:
    // 19.6 → 10.5 ms median) for 1.9 MiB more file and 1.9 MiB more idle RSS. JSC bytecode is tied to the runtime build that made it, and
    // cross-compiled executables carrying it crash at launch (oven-sh/bun#18416), so only the
    // host build gets it.
    bytecode: target === null,
    format: "esm",
    sourcemap: "none",
    define: { CACHEISMO_COMMIT: JSON.stringify(commit) },
  });
  if (!result.success) {
    for (const log of result.logs) console.error(log);
    throw new Error(`build failed for ${target ?? "this machine"}`);
  }
  const path = result.outputs[0]?.path ?? outfile;
  console.log(`built ${path} (${(statSync(path).size / 1024 / 1024).toFixed(1)} MiB)`);
  return path;
}

await build(null, join(outDir, "cacheismo"));
if (process.argv.includes("--all")) {
  const names: string[] = [];
  for (const t of TARGETS) {
    const path = await build(t, join(outDir, `cacheismo-${t.replace(/^bun-/, "")}`));
    names.push(path.slice(outDir.length + 1));
  }
  const sums = await $`sha256sum ${names}`.cwd(outDir).text();
  await Bun.write(join(outDir, "SHA256SUMS"), sums);
  console.log(`wrote ${join(outDir, "SHA256SUMS")}`);
}
