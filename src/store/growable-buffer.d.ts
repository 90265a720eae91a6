// Growable SharedArrayBuffers (ES2024), which Bun 1.4.5 has and TypeScript 5.6's lib does not
// declare yet.
interface SharedArrayBufferConstructor {
  new (byteLength: number, options?: { maxByteLength?: number }): SharedArrayBuffer;
}

interface SharedArrayBuffer {
  readonly growable: boolean;
  readonly maxByteLength: number;
  grow(newByteLength: number): void;
}
