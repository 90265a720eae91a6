/**
 * libc's madvise through bun:ffi: Bun has none of its own. `madvise` is null where libc cannot be
 * loaded (not glibc Linux); callers then leave their memory as it is.
 */
import { dlopen, FFIType } from "bun:ffi";

export const MADV_DONTNEED = 4;
export const MADV_HUGEPAGE = 14;

export type Madvise = (address: number, length: number, advice: number) => number;

function loadMadvise(): Madvise | null {
  if (process.platform !== "linux") return null;
  try {
    const libc = dlopen("libc.so.6", { madvise: { args: [FFIType.u64, FFIType.u64, FFIType.i32], returns: FFIType.i32 } });
    return libc.symbols.madvise as Madvise;
  } catch {
    return null;
  }
}

export const madvise: Madvise | null = loadMadvise();
