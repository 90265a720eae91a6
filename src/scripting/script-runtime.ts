/**
 * One Lua state made ready for virtual keys: the prelude (sandbox, marshal,
 * API, helpers, dispatcher), the bundled object types, then the user's
 * scripts. The state holds no object data (objects live in the store), so a
 * runtime can be thrown away and rebuilt at any time.
 */
import type { LuaWasm } from "wasmoon";
import { type HostDependencies, pushHostTable } from "./host-functions.ts";
import { BUNDLED_OBJECTS, type LuaSource, PRELUDE } from "./lua-sources.ts";
import { CallOutcome, LUA_TNIL, LUA_TNUMBER, LUA_TSTRING, LuaVm, TIMEOUT_MESSAGE } from "./lua-vm.ts";

/** A virtual key whose handler failed; `reason` has no line breaks. */
export class ScriptFailure {
  constructor(readonly reason: string) {}
}

export interface RuntimeOptions extends Omit<HostDependencies, "registerType" | "decodedCacheBytes"> {
  readonly timeoutMs: number;
  readonly memoryLimitBytes: number;
}

/** Loading a script may take longer than serving a key, but not forever. */
const MIN_LOAD_BUDGET_MS = 1000;
/** The decoded-object cache of core.lua gets this share of the Lua heap (counted as encoded bytes; decoded tables are several times larger). */
const DECODED_CACHE_SHARE = 1 / 32;

// The dispatcher's two entry points stay on the main thread's stack for the
// state's lifetime, so a call starts with a cheap lua_pushvalue.
const DISPATCH_SLOT = 1;
const LOAD_SCRIPT_SLOT = 2;
const BASE_TOP = 2;

export class ScriptRuntime {
  /** Registered object types: a key whose first segment is not one never enters Lua. */
  readonly typeNames = new Set<string>();
  private readonly vm: LuaVm;
  private readonly loadBudgetMs: number;

  /** Builds a runtime; throws when the prelude itself cannot run. */
  static create(luaWasm: LuaWasm, options: RuntimeOptions, userScripts: readonly LuaSource[]): { runtime: ScriptRuntime; errors: string[] } {
    const runtime = new ScriptRuntime(luaWasm, options);
    for (const script of BUNDLED_OBJECTS) {
      const error = runtime.loadScript(script, true);
      if (error !== null) {
        runtime.close();
        throw new Error(`bundled ${error}`);
      }
    }
    const errors: string[] = [];
    for (const script of userScripts) {
      const error = runtime.loadScript(script, false);
      if (error !== null) errors.push(error);
    }
    return { runtime, errors };
  }

  private constructor(
    luaWasm: LuaWasm,
    private readonly options: RuntimeOptions,
  ) {
    this.loadBudgetMs = Math.max(options.timeoutMs, MIN_LOAD_BUDGET_MS);
    this.vm = new LuaVm(luaWasm, options.memoryLimitBytes);
    try {
      this.runPrelude();
    } catch (e) {
      this.vm.close(this.loadBudgetMs);
      throw e;
    }
  }

  /**
   * The complete reply block for a virtual key (possibly empty), null when
   * the key names no method, or the failure.
   */
  dispatch(key: string): Uint8Array | null | ScriptFailure {
    const vm = this.vm;
    const L = vm.L;
    vm.pushValue(DISPATCH_SLOT);
    vm.pushString(L, key);
    const outcome = vm.call(1, 1, this.options.timeoutMs);
    let result: Uint8Array | null | ScriptFailure;
    if (outcome !== CallOutcome.Ok) result = new ScriptFailure(this.failureReason(outcome));
    else if (vm.type(L, -1) === LUA_TNIL) result = null;
    else result = vm.toBytes(L, -1) ?? new ScriptFailure("dispatcher returned no string");
    vm.setTop(BASE_TOP);
    return result;
  }

  /** Runs one object script; null, or the error as "<file>:<line>: <message>". */
  private loadScript(script: LuaSource, bundled: boolean): string | null {
    const vm = this.vm;
    vm.pushValue(LOAD_SCRIPT_SLOT);
    vm.pushString(vm.L, script.name);
    vm.pushString(vm.L, script.code);
    vm.pushBoolean(vm.L, bundled);
    const outcome = vm.call(3, 1, this.loadBudgetMs);
    let error: string | null = null;
    if (outcome !== CallOutcome.Ok) error = `${script.name}: ${this.failureReason(outcome)}`;
    else if (vm.type(vm.L, -1) !== LUA_TNIL) error = vm.toText(vm.L, -1);
    vm.setTop(BASE_TOP);
    return error;
  }

  close(): void {
    this.vm.close(this.loadBudgetMs);
  }

  private runPrelude(): void {
    const vm = this.vm;
    pushHostTable(vm, {
      ...this.options,
      registerType: (name) => this.typeNames.add(name),
      decodedCacheBytes: Math.floor(this.options.memoryLimitBytes * DECODED_CACHE_SHARE),
    });
    for (const chunk of PRELUDE) {
      vm.setTop(1);
      if (!vm.load(chunk.name, chunk.code)) throw new Error(`${chunk.name}: ${vm.toText(vm.L, -1)}`);
      vm.pushValue(1);
      const outcome = vm.call(1, 1, this.loadBudgetMs);
      if (outcome !== CallOutcome.Ok) throw new Error(`${chunk.name}: ${this.failureReason(outcome)}`);
    }
    // Stack: host, entries (returned by dispatch.lua, the last chunk).
    vm.getField(vm.L, 2, "dispatch");
    vm.getField(vm.L, 2, "loadScript");
    vm.copy(3, DISPATCH_SLOT);
    vm.copy(4, LOAD_SCRIPT_SLOT);
    vm.setTop(BASE_TOP);
  }

  /** Why the call on top of the stack failed, on one line. */
  private failureReason(outcome: CallOutcome): string {
    if (outcome === CallOutcome.Timeout) return TIMEOUT_MESSAGE;
    if (outcome === CallOutcome.OutOfMemory) return "script out of memory";
    const type = this.vm.type(this.vm.L, -1);
    const message = type === LUA_TSTRING || type === LUA_TNUMBER ? this.vm.toText(this.vm.L, -1) : null;
    return (message ?? "script raised a non-string error").replace(/[\r\n]+/g, " ");
  }
}
