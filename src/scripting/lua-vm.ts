/**
 * One Lua 5.4 state inside wasmoon's WebAssembly build, driven through the raw
 * C API (no proxy layer, no ccall string marshalling): the hot path only moves
 * bytes between JS and the wasm heap. Owns the two limits every call runs
 * under: a time budget (a count hook checks it every HOOK_INSTRUCTIONS VM
 * instructions) and a heap budget (wasmoon's traced allocator refuses to grow
 * past it).
 *
 * A call runs out of time once it has taken its budget in wall-clock time AND
 * its thread has used as much CPU time since it began: a server that is
 * descheduled or paused does not fail the scripts it was not running, and the
 * other threads' work (-t) does not count against this thread's script.
 *
 * Script code runs only inside call and resume, under both limits. A
 * finalizer (__gc) would not: Lua runs finalizers with hooks off, at any
 * allocation (pushes from JS included) and in close, so the sandbox lets no
 * script set one.
 *
 * Strings cross as bytes: keys as latin1 strings (one character per byte,
 * pushLatin1/checkLatin1/toLatin1), text (code, names, messages) as UTF-8.
 */
import { LuaGlobal, type LuaWasm } from "wasmoon";
import { latin1String } from "../latin1.ts";

/** The exports of wasmoon's module that are called directly. */
interface RawLua {
  readonly HEAPU8: Uint8Array;
  readonly HEAPU32: Uint32Array;
  _malloc(size: number): number;
  _free(ptr: number): void;
  addFunction(fn: (L: number, arg: number) => number | void, signature: string): number;
  removeFunction(ptr: number): void;
  _luaL_openlibs(L: number): void;
  _luaL_loadbufferx(L: number, buf: number, size: number, name: number, mode: number): number;
  _luaL_checklstring(L: number, arg: number, lenPtr: number): number;
  _luaL_checknumber(L: number, arg: number): number;
  _lua_sethook(L: number, fn: number, mask: number, count: number): void;
  _lua_pcallk(L: number, nargs: number, nresults: number, errfunc: number, ctx: number, k: number): number;
  _lua_error(L: number): number;
  _lua_settop(L: number, idx: number): void;
  _lua_pushvalue(L: number, idx: number): void;
  _lua_copy(L: number, from: number, to: number): void;
  _lua_pushnumber(L: number, n: number): void;
  _lua_pushinteger(L: number, n: bigint): void;
  _lua_pushboolean(L: number, b: number): void;
  _lua_pushnil(L: number): void;
  _lua_toboolean(L: number, idx: number): number;
  _lua_tonumberx(L: number, idx: number, isnum: number): number;
  _lua_pushlstring(L: number, ptr: number, len: number): number;
  _lua_pushcclosure(L: number, fn: number, n: number): void;
  _lua_createtable(L: number, narr: number, nrec: number): void;
  _lua_setfield(L: number, idx: number, k: number): void;
  _lua_getfield(L: number, idx: number, k: number): number;
  _lua_rawseti(L: number, idx: number, n: bigint): void;
  _lua_type(L: number, idx: number): number;
  _lua_tolstring(L: number, idx: number, lenPtr: number): number;
  _lua_newthread(L: number): number;
  _lua_resume(L: number, from: number, nargs: number, nresultsPtr: number): number;
  _luaL_ref(L: number, t: number): number;
  _luaL_unref(L: number, t: number, ref: number): void;
  _lua_rawgeti(L: number, idx: number, n: bigint): number;
}

/** A JS function callable from Lua: reads its arguments from L, pushes results, returns their count. */
export type HostFunction = (L: number) => number;

/** lua_pcall / lua_resume / luaL_load results (LUA_OK, LUA_YIELD, LUA_ERRMEM). */
const LUA_OK = 0;
const LUA_YIELD = 1;
const LUA_ERRMEM = 4;
/** Lua 5.4's pseudo-index of the registry (-LUAI_MAXSTACK - 1000). */
const LUA_REGISTRYINDEX = -1001000;

/** How a protected call or a resume ended. */
export enum CallOutcome {
  Ok,
  Error,
  Timeout,
  OutOfMemory,
  /** Only from resume: the thread is suspended in coroutine.yield. */
  Yield,
}

/** A Lua thread (coroutine) created from the host, kept alive by a registry reference. */
export interface LuaThread {
  readonly L: number;
  readonly ref: number;
}

export const LUA_TNIL = 0;
export const LUA_TNUMBER = 3;
export const LUA_TSTRING = 4;
export const LUA_TTABLE = 5;
export const TIMEOUT_MESSAGE = "script timeout";

const LUA_MASKCOUNT = 8;
/** How often the deadline is checked; a quota update runs a few hundred instructions. */
const HOOK_INSTRUCTIONS = 1000;
const SCRATCH_BYTES = 64 * 1024;
/** Emscripten implements longjmp (a Lua error unwinding) by throwing Infinity through JS frames. */
const LONGJMP = Infinity;

const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** How old a CPU time reading a call may start from (see startBudget). */
const CPU_READING_MS = 1;

function cpuMicros(): number {
  const usage = process.threadCpuUsage();
  return usage.user + usage.system;
}

export class LuaVm {
  /** The main thread's lua_State. */
  readonly L: number;
  private readonly raw: RawLua;
  private readonly global: LuaGlobal;
  private readonly functions: number[] = [];
  private readonly cStrings = new Map<string, number>();
  private readonly lenPtr: number;
  private readonly resultsPtr: number;
  /** SCRATCH_BYTES of wasm heap for moving keys and small values into Lua. */
  private readonly scratch: number;
  private deadline = Infinity;
  private cpuDeadlineMicros = Infinity;
  /** When the budget now running started (performance.now(), cpuMicros()). */
  private startedAt = 0;
  private startedCpuMicros = 0;
  /** The last reading of cpuMicros() and when it was taken (performance.now()). */
  private cpuReading = 0;
  private cpuReadAt = -Infinity;
  private timedOut = false;
  /** Values the last resume left on its thread's stack (yielded or returned). */
  resultCount = 0;
  /** Wall and CPU time the last resume spent, set only when it yielded. */
  spentMs = 0;
  spentCpuMicros = 0;
  private closed = false;

  constructor(
    luaWasm: LuaWasm,
    private readonly memoryLimitBytes: number,
  ) {
    this.raw = luaWasm.module as unknown as RawLua;
    this.global = new LuaGlobal(luaWasm, true);
    this.L = this.global.address;
    this.raw._luaL_openlibs(this.L);
    this.lenPtr = this.malloc(8);
    this.resultsPtr = this.malloc(4);
    this.scratch = this.malloc(SCRATCH_BYTES);
    const timeoutMessage = this.cString(TIMEOUT_MESSAGE);
    const hook = this.raw.addFunction((L: number): void => {
      if (performance.now() <= this.deadline || cpuMicros() <= this.cpuDeadlineMicros) return;
      this.timedOut = true;
      this.raw._lua_pushlstring(L, timeoutMessage, TIMEOUT_MESSAGE.length);
      this.raw._lua_error(L);
    }, "vii");
    this.functions.push(hook);
    this.raw._lua_sethook(this.L, hook, LUA_MASKCOUNT, HOOK_INSTRUCTIONS);
  }

  /**
   * lua_pcall under both budgets. Outside calls the heap is unlimited, so the
   * few allocations made from JS (pushing a key) can never raise an error
   * outside protected mode, which would abort the whole wasm instance.
   */
  call(nargs: number, nresults: number, budgetMs: number): CallOutcome {
    this.startBudget(budgetMs, budgetMs * 1000);
    this.global.setMemoryMax(this.memoryLimitBytes);
    let status: number;
    try {
      status = this.raw._lua_pcallk(this.L, nargs, nresults, 0, 0, 0);
    } finally {
      this.deadline = Infinity;
      this.cpuDeadlineMicros = Infinity;
      this.global.setMemoryMax(undefined);
    }
    if (status === LUA_OK) return CallOutcome.Ok;
    if (this.timedOut) return CallOutcome.Timeout;
    if (status === LUA_ERRMEM) return CallOutcome.OutOfMemory;
    return CallOutcome.Error;
  }

  /**
   * lua_resume of `thread`, whose stack holds a function and its nargs
   * arguments (to start it) or the nargs values its coroutine.yield returns
   * (to continue it), under what is left of a call's time budget and the heap
   * budget. Ok and Yield leave `resultCount` values on the thread's stack; a
   * failure leaves the error there, and the thread is dead. A Yield sets
   * `spentMs`/`spentCpuMicros`. The count hook is inherited from the main
   * thread (lua_newthread copies it), so the budget holds inside coroutines.
   */
  resume(thread: LuaThread, nargs: number, budgetMs: number, budgetCpuMicros: number): CallOutcome {
    this.startBudget(budgetMs, budgetCpuMicros);
    this.global.setMemoryMax(this.memoryLimitBytes);
    let status: number;
    try {
      status = this.raw._lua_resume(thread.L, 0, nargs, this.resultsPtr);
    } finally {
      this.deadline = Infinity;
      this.cpuDeadlineMicros = Infinity;
      this.global.setMemoryMax(undefined);
    }
    this.resultCount = this.raw.HEAPU32[this.resultsPtr >> 2];
    if (status === LUA_OK) return CallOutcome.Ok;
    if (status === LUA_YIELD) {
      this.spentMs = performance.now() - this.startedAt;
      this.spentCpuMicros = cpuMicros() - this.startedCpuMicros;
      return CallOutcome.Yield;
    }
    if (this.timedOut) return CallOutcome.Timeout;
    if (status === LUA_ERRMEM) return CallOutcome.OutOfMemory;
    return CallOutcome.Error;
  }

  /** A new thread, anchored in the registry until releaseThread. */
  newThread(): LuaThread {
    const L = this.raw._lua_newthread(this.L);
    return { L, ref: this.raw._luaL_ref(this.L, LUA_REGISTRYINDEX) };
  }

  releaseThread(thread: LuaThread): void {
    this.raw._luaL_unref(this.L, LUA_REGISTRYINDEX, thread.ref);
  }

  /** Pops the value on top of the main stack into the registry; returns its reference. */
  ref(): number {
    return this.raw._luaL_ref(this.L, LUA_REGISTRYINDEX);
  }

  /** Pushes the registry value `ref` onto L's stack. */
  pushRef(L: number, ref: bigint): void {
    this.raw._lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
  }

  /** Compiles a text chunk named `name` in messages; pushes the function (true) or the error message (false). */
  load(name: string, code: string): boolean {
    const bytes = encoder.encode(code);
    const buf = this.malloc(bytes.length);
    this.raw.HEAPU8.set(bytes, buf);
    const status = this.raw._luaL_loadbufferx(this.L, buf, bytes.length, this.cString(`=${name}`), this.cString("t"));
    this.raw._free(buf);
    return status === LUA_OK;
  }

  setTop(L: number, idx: number): void {
    this.raw._lua_settop(L, idx);
  }

  pushValue(idx: number): void {
    this.raw._lua_pushvalue(this.L, idx);
  }

  /** Overwrites slot `to` with the value in slot `from`. */
  copy(from: number, to: number): void {
    this.raw._lua_copy(this.L, from, to);
  }

  type(L: number, idx: number): number {
    return this.raw._lua_type(L, idx);
  }

  /** t[name] = top, where t is at idx (negative idx counts before the popped value). */
  setField(L: number, idx: number, name: string): void {
    this.raw._lua_setfield(L, idx, this.cString(name));
  }

  /** Pushes t[name] where t is at idx; returns its type. */
  getField(L: number, idx: number, name: string): number {
    return this.raw._lua_getfield(L, idx, this.cString(name));
  }

  pushBoolean(L: number, b: boolean): void {
    this.raw._lua_pushboolean(L, b ? 1 : 0);
  }

  pushNil(L: number): void {
    this.raw._lua_pushnil(L);
  }

  /** Lua truthiness of the value at idx (false only for nil and false). */
  toBoolean(L: number, idx: number): boolean {
    return this.raw._lua_toboolean(L, idx) !== 0;
  }

  /** The number at idx (0 when it is not one). */
  toNumber(L: number, idx: number): number {
    return this.raw._lua_tonumberx(L, idx, 0);
  }

  /** Whole numbers in the 53-bit range go in as Lua integers, the rest as floats. */
  pushNumber(L: number, n: number): void {
    if (Number.isSafeInteger(n)) this.raw._lua_pushinteger(L, BigInt(n));
    else this.raw._lua_pushnumber(L, n);
  }

  pushBytes(L: number, bytes: Uint8Array): void {
    if (bytes.length <= SCRATCH_BYTES) {
      this.raw.HEAPU8.set(bytes, this.scratch);
      this.raw._lua_pushlstring(L, this.scratch, bytes.length);
      return;
    }
    const buf = this.malloc(bytes.length);
    try {
      this.raw.HEAPU8.set(bytes, buf);
      this.raw._lua_pushlstring(L, buf, bytes.length);
    } finally {
      this.raw._free(buf);
    }
  }

  /** Pushes text as UTF-8 (script code, names, messages). */
  pushString(L: number, s: string): void {
    const n = s.length;
    if (n > SCRATCH_BYTES) {
      this.pushBytes(L, encoder.encode(s));
      return;
    }
    const heap = this.raw.HEAPU8;
    const base = this.scratch;
    let i = 0;
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      heap[base + i] = c;
      i++;
    }
    if (i === n) {
      this.raw._lua_pushlstring(L, base, n);
      return;
    }
    this.pushBytes(L, encoder.encode(s));
  }

  /**
   * Pushes a string of one byte per character (latin1: a key as the protocol
   * read it, an object key from the store): Lua sees exactly those bytes.
   */
  pushLatin1(L: number, s: string): void {
    const n = s.length;
    const buf = n <= SCRATCH_BYTES ? this.scratch : this.malloc(n);
    try {
      const heap = this.raw.HEAPU8;
      for (let i = 0; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c > 0xff) throw new RangeError(`not a byte string: character ${c} at ${i}`);
        heap[buf + i] = c;
      }
      this.raw._lua_pushlstring(L, buf, n);
    } finally {
      if (buf !== this.scratch) this.raw._free(buf);
    }
  }

  /** Pushes a table with one slot per item: its bytes as a string, or nil (absent) where the item is null. */
  pushBytesArray(L: number, items: readonly (Uint8Array | null)[]): void {
    this.raw._lua_createtable(L, items.length, 0);
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      if (item === null) continue;
      this.pushBytes(L, item);
      this.raw._lua_rawseti(L, -2, BigInt(i + 1));
    }
  }

  /** Pushes an array of latin1 strings (see pushLatin1) as a Lua sequence. */
  pushLatin1Array(L: number, items: readonly string[]): void {
    this.raw._lua_createtable(L, items.length, 0);
    for (let i = 0; i < items.length; i++) {
      this.pushLatin1(L, items[i]);
      this.raw._lua_rawseti(L, -2, BigInt(i + 1));
    }
  }

  /** A copy of the string (or number) at idx, or null for other types. */
  toBytes(L: number, idx: number): Uint8Array | null {
    const ptr = this.raw._lua_tolstring(L, idx, this.lenPtr);
    if (ptr === 0) return null;
    const len = this.raw.HEAPU32[this.lenPtr >> 2];
    return this.raw.HEAPU8.slice(ptr, ptr + len);
  }

  /**
   * The strings t[1], t[2], … of the table on top of L's stack, joined into one copy (a reply
   * written in pieces is copied once, not joined in Lua first); null when one is not a string.
   */
  joinPieces(L: number): Uint8Array | null {
    const raw = this.raw;
    const ptrs: number[] = [];
    const lens: number[] = [];
    let total = 0;
    for (let i = 1; ; i++) {
      const type = raw._lua_rawgeti(L, -1, BigInt(i));
      const ptr = type === LUA_TSTRING ? raw._lua_tolstring(L, -1, this.lenPtr) : 0;
      raw._lua_settop(L, -2);
      if (type === LUA_TNIL) break;
      if (ptr === 0) return null;
      // The table keeps the string alive, and Lua never moves one.
      const len = raw.HEAPU32[this.lenPtr >> 2];
      ptrs.push(ptr);
      lens.push(len);
      total += len;
    }
    const out = new Uint8Array(total);
    const heap = raw.HEAPU8;
    let at = 0;
    for (let i = 0; i < ptrs.length; i++) {
      out.set(heap.subarray(ptrs[i], ptrs[i] + lens[i]), at);
      at += lens[i];
    }
    return out;
  }

  /** The string (or number) at idx as text, decoded from UTF-8, or null for other types. */
  toText(L: number, idx: number): string | null {
    const ptr = this.raw._lua_tolstring(L, idx, this.lenPtr);
    if (ptr === 0) return null;
    return this.decode(ptr, this.raw.HEAPU32[this.lenPtr >> 2]);
  }

  /** The string (or number) at idx as a latin1 string, one character per byte, or null for other types. */
  toLatin1(L: number, idx: number): string | null {
    const ptr = this.raw._lua_tolstring(L, idx, this.lenPtr);
    if (ptr === 0) return null;
    return latin1String(this.raw.HEAPU8, ptr, ptr + this.raw.HEAPU32[this.lenPtr >> 2]);
  }

  /** Argument `arg` as text decoded from UTF-8; raises a Lua argument error when it is not a string. */
  checkString(L: number, arg: number): string {
    const ptr = this.raw._luaL_checklstring(L, arg, this.lenPtr);
    return this.decode(ptr, this.raw.HEAPU32[this.lenPtr >> 2]);
  }

  /** Argument `arg` as a latin1 string, one character per byte (a key); raises a Lua argument error when it is not a string. */
  checkLatin1(L: number, arg: number): string {
    const ptr = this.raw._luaL_checklstring(L, arg, this.lenPtr);
    const len = this.raw.HEAPU32[this.lenPtr >> 2];
    const heap = this.raw.HEAPU8;
    if (len > 64) return latin1String(heap, ptr, ptr + len);
    let s = "";
    for (let i = 0; i < len; i++) s += String.fromCharCode(heap[ptr + i]);
    return s;
  }

  /** Argument `arg` as bytes; raises a Lua argument error when it is not a string. */
  checkBytes(L: number, arg: number): Uint8Array {
    const ptr = this.raw._luaL_checklstring(L, arg, this.lenPtr);
    return this.raw.HEAPU8.slice(ptr, ptr + this.raw.HEAPU32[this.lenPtr >> 2]);
  }

  /** Argument `arg` as a number; raises a Lua argument error otherwise. */
  checkNumber(L: number, arg: number): number {
    return this.raw._luaL_checknumber(L, arg);
  }

  /** Pushes a table of host functions and constants. */
  pushTable(L: number, functions: Readonly<Record<string, HostFunction>>, constants: Readonly<Record<string, string | number>>): void {
    this.raw._lua_createtable(L, 0, Object.keys(functions).length + Object.keys(constants).length);
    for (const [name, fn] of Object.entries(functions)) {
      this.raw._lua_pushcclosure(L, this.registerFunction(fn), 0);
      this.setField(L, -2, name);
    }
    for (const [name, value] of Object.entries(constants)) {
      if (typeof value === "number") this.pushNumber(L, value);
      else this.pushString(L, value);
      this.setField(L, -2, name);
    }
  }

  /**
   * Frees the state, running the pending finalizers. Lua runs finalizers with
   * hooks off, outside any budget, which is why scripts cannot set __gc
   * (sandbox.lua): the only finalizers are the prelude's, which free rings.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.global.close();
    } finally {
      for (const fn of this.functions) this.raw.removeFunction(fn);
      for (const ptr of this.cStrings.values()) this.raw._free(ptr);
      this.raw._free(this.lenPtr);
      this.raw._free(this.resultsPtr);
      this.raw._free(this.scratch);
    }
  }

  /**
   * A call starts its CPU clock from the last reading when that is less than CPU_READING_MS old
   * (wall time): reading the thread's CPU time is a system call, as long as a short call, and
   * an earlier start only counts up to that much more CPU time against the budget.
   */
  private startBudget(budgetMs: number, budgetCpuMicros: number): void {
    this.timedOut = false;
    this.startedAt = performance.now();
    if (this.startedAt - this.cpuReadAt > CPU_READING_MS) {
      this.cpuReading = cpuMicros();
      this.cpuReadAt = this.startedAt;
    }
    this.startedCpuMicros = this.cpuReading;
    this.deadline = this.startedAt + budgetMs;
    this.cpuDeadlineMicros = this.startedCpuMicros + budgetCpuMicros;
  }

  /**
   * Wraps fn for Lua. A JS exception becomes a Lua error, so that it unwinds
   * through Lua's own error path and leaves the state sound; a Lua error
   * already in flight (longjmp) passes through untouched.
   */
  private registerFunction(fn: HostFunction): number {
    const ptr = this.raw.addFunction((L: number): number => {
      let failure: unknown;
      try {
        return fn(L);
      } catch (e) {
        if (e === LONGJMP) throw e;
        failure = e;
      }
      this.pushString(L, failure instanceof Error ? failure.message : String(failure));
      return this.raw._lua_error(L);
    }, "ii");
    this.functions.push(ptr);
    return ptr;
  }

  private decode(ptr: number, len: number): string {
    const heap = this.raw.HEAPU8;
    if (len <= 64) {
      let s = "";
      for (let i = 0; i < len; i++) {
        const c = heap[ptr + i];
        if (c >= 0x80) return decoder.decode(heap.subarray(ptr, ptr + len));
        s += String.fromCharCode(c);
      }
      return s;
    }
    return decoder.decode(heap.subarray(ptr, ptr + len));
  }

  /** wasm heap memory outside the Lua heap limit; throws when there is none. */
  private malloc(size: number): number {
    const ptr = this.raw._malloc(Math.max(size, 1));
    if (ptr === 0) throw new Error(`cannot allocate ${size} bytes of wasm memory`);
    return ptr;
  }

  /** A NUL-terminated copy of s in the wasm heap, kept until close. */
  private cString(s: string): number {
    let ptr = this.cStrings.get(s);
    if (ptr === undefined) {
      const bytes = encoder.encode(s);
      ptr = this.malloc(bytes.length + 1);
      this.raw.HEAPU8.set(bytes, ptr);
      this.raw.HEAPU8[ptr + bytes.length] = 0;
      this.cStrings.set(s, ptr);
    }
    return ptr;
  }
}
