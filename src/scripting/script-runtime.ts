/**
 * One Lua state made ready for virtual keys: the prelude (sandbox, marshal,
 * API, cluster primitives, helpers, dispatcher), the bundled object types,
 * then the user's scripts. The state holds no object data (objects live in
 * the store), so a runtime can be thrown away and rebuilt at any time.
 *
 * Each virtual key runs in a Lua thread of its own (reused once it finishes).
 * A handler that never waits finishes within dispatch, which returns its reply
 * directly. One that waits on other servers (cluster.lua) yields the request;
 * dispatch then returns a promise, and the thread is resumed with the values
 * once they are in, while other keys run on other threads meanwhile.
 */
import type { LuaWasm } from "wasmoon";
import { Rings } from "./consistent.ts";
import { type HostDependencies, pushHostTable } from "./host-functions.ts";
import { BUNDLED_OBJECTS, type LuaSource, PRELUDE } from "./lua-sources.ts";
import { CallOutcome, LUA_TNIL, LUA_TNUMBER, LUA_TSTRING, LUA_TTABLE, type LuaThread, LuaVm, TIMEOUT_MESSAGE } from "./lua-vm.ts";
import type { FetchAnswer, FetchRequest } from "./peer-fetch.ts";
import { isValueBlocks } from "./value-blocks.ts";

/** A virtual key whose handler failed; `reason` has no line breaks. */
export class ScriptFailure {
  constructor(readonly reason: string) {}
}

/** A key's reply (null: not a virtual key), or the promise of it when the handler waits on other servers. */
export type DispatchResult = Uint8Array | null | ScriptFailure | Promise<Uint8Array | ScriptFailure>;

export interface RuntimeOptions extends Omit<HostDependencies, "registerType" | "decodedCacheBytes" | "rings" | "waitToken"> {
  readonly timeoutMs: number;
  /** Bundled types the host serves without Lua while user scripts leave them intact (intactTypes). */
  readonly watchedTypes: readonly string[];
  readonly memoryLimitBytes: number;
  /** Key hash of newConsistent's rings (a --hash name). */
  readonly hash: string;
  /** Gets values from other servers for a waiting handler; never rejects. */
  readonly fetch: (requests: readonly FetchRequest[]) => Promise<FetchAnswer>;
}

export const UNAVAILABLE = "scripting unavailable";

/** Loading a script may take longer than serving a key, but not forever. */
const MIN_LOAD_BUDGET_MS = 1000;
/**
 * The decoded-object cache of core.lua gets this share of the Lua heap, counted as encoded bytes
 * (decoded tables take about three times as much): a 100,000-member set (2 MB encoded) fits the
 * default 64 MB heap's share, so updates to it never decode it again.
 */
const DECODED_CACHE_SHARE = 1 / 8;

/** Log bytes of the objects a Lua state (and the thread's native-objects.ts) keeps decoded. */
export function decodedCacheBytes(memoryLimitBytes: number): number {
  return Math.floor(memoryLimitBytes * DECODED_CACHE_SHARE);
}
/** Finished threads kept for reuse; more are made when more keys wait at once. */
const MAX_IDLE_THREADS = 32;

// loadScript stays on the main thread's stack for the state's lifetime.
const LOAD_SCRIPT_SLOT = 1;
const BASE_TOP = 1;

/** The reply bytes, or the failure when they are not whole VALUE blocks (value-blocks.ts). */
function checkedReply(reply: Uint8Array | null): Uint8Array | ScriptFailure {
  if (reply === null) return new ScriptFailure("dispatcher returned no string");
  return isValueBlocks(reply) ? reply : new ScriptFailure("the handler wrote something other than VALUE blocks");
}

/** What run() returns when the thread yielded a wait; the request is then in `waitRequests`. */
const SUSPENDED = Symbol("suspended");

const enum State {
  Open,
  /** Replaced by a newer runtime: closes once its waiting keys have finished. */
  Retiring,
  Closed,
  /** A resume threw (the engine failed): the state must not be touched again. */
  Broken,
}

export class ScriptRuntime {
  /** Registered object types: a key whose first segment is not one never enters Lua. */
  readonly typeNames = new Set<string>();
  private readonly vm: LuaVm;
  private readonly loadBudgetMs: number;
  /** Registry reference of dispatch.lua's dispatch function. */
  private dispatchRef = 0n;
  /** Registry references of dispatch.lua's watch and intactMask functions. */
  private watchRef = 0n;
  private intactMaskRef = 0n;
  /** Whether user scripts were loaded: only they can change the bundled types. */
  private hasUserScripts = false;
  private intactMask = 0;
  /** Lua ran (with user scripts loaded) since intactMask was last read from it. */
  private intactMaskStale = false;
  private readonly idleThreads: LuaThread[] = [];
  /** Unguessable by scripts: tells the engine's waits from a script's own coroutine.yield. */
  private readonly waitToken = crypto.randomUUID();
  private waitRequests: FetchRequest[] = [];
  private state = State.Open;
  /** Keys waiting on other servers. */
  private waiting = 0;
  private onRetired: (() => void) | null = null;

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
    runtime.hasUserScripts = userScripts.length > 0;
    runtime.watch();
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
      this.vm.close();
      throw e;
    }
  }

  /**
   * The complete reply block for a virtual key (possibly empty), null when
   * the key names no method, or the failure; a promise of the reply when the
   * handler waits on other servers. Throws (and the promise rejects) only when
   * the engine itself failed.
   */
  dispatch(key: string): DispatchResult {
    if (this.state !== State.Open) return new ScriptFailure(UNAVAILABLE);
    const vm = this.vm;
    const thread = this.idleThreads.pop() ?? vm.newThread();
    vm.pushRef(thread.L, this.dispatchRef);
    vm.pushLatin1(thread.L, key);
    const timeoutMs = this.options.timeoutMs;
    const result = this.run(thread, 1, timeoutMs, timeoutMs * 1000);
    if (result !== SUSPENDED) return result;
    return this.wait(thread, this.waitRequests, timeoutMs - vm.spentMs, timeoutMs * 1000 - vm.spentCpuMicros);
  }

  /**
   * Of options.watchedTypes, bit i is set while that bundled type has all the methods it was
   * loaded with. A call may replace a method as well as a script's load, so once user scripts are
   * loaded it is asked of Lua again on the first read after Lua ran (checking after every call
   * would cost each Lua call a few microseconds; this way only a switch from Lua to a native call does).
   */
  get intactTypes(): number {
    if (this.intactMaskStale) {
      this.intactMaskStale = false;
      try {
        this.intactMask = this.askIntactMask(this.intactMaskRef, []);
      } catch {
        // The engine failed: the next dispatch finds out and restarts it; meanwhile, Lua only.
        this.intactMask = 0;
      }
    }
    return this.intactMask;
  }

  /** Stops at once: keys still waiting answer "scripting unavailable". */
  close(): void {
    if (this.state === State.Closed) return;
    const broken = this.state === State.Broken;
    this.state = State.Closed;
    if (!broken) this.vm.close();
  }

  /** Takes no more keys, and closes once the keys waiting on other servers have finished. */
  retire(onRetired: () => void): void {
    if (this.state !== State.Open) return;
    if (this.waiting === 0) {
      this.close();
      onRetired();
      return;
    }
    this.state = State.Retiring;
    this.onRetired = onRetired;
  }

  /**
   * Resumes a thread. Returns the reply (or null, or the failure) when the
   * handler ended, SUSPENDED when it yielded a wait. A finished thread is
   * kept for reuse; a failed one is dropped (it is dead).
   */
  private run(thread: LuaThread, nargs: number, budgetMs: number, budgetCpuMicros: number): Uint8Array | null | ScriptFailure | typeof SUSPENDED {
    const vm = this.vm;
    const L = thread.L;
    let outcome: CallOutcome;
    try {
      outcome = this.options.store.exclusive(() => vm.resume(thread, nargs, budgetMs, budgetCpuMicros));
    } catch (e) {
      this.state = State.Broken;
      throw e;
    }
    if (this.hasUserScripts) this.intactMaskStale = true;
    if (outcome === CallOutcome.Ok) {
      const type = vm.type(L, -1);
      const result = type === LUA_TNIL ? null : checkedReply(type === LUA_TTABLE ? vm.joinPieces(L) : vm.toBytes(L, -1));
      vm.setTop(L, 0);
      if (this.idleThreads.length < MAX_IDLE_THREADS) this.idleThreads.push(thread);
      else vm.releaseThread(thread);
      return result;
    }
    if (outcome === CallOutcome.Yield && this.takeWaitRequest(thread)) return SUSPENDED;
    const failure = new ScriptFailure(
      outcome === CallOutcome.Yield ? "coroutine.yield outside a coroutine of the script's own" : this.failureReason(outcome, L),
    );
    vm.releaseThread(thread);
    return failure;
  }

  /** Serves the waits of a suspended thread until its handler ends; the time budget counts Lua time only. */
  private async wait(thread: LuaThread, requests: FetchRequest[], budgetMs: number, budgetCpuMicros: number): Promise<Uint8Array | ScriptFailure> {
    this.waiting++;
    try {
      for (;;) {
        const answer = await this.options.fetch(requests);
        if (this.state === State.Closed || this.state === State.Broken) return new ScriptFailure(UNAVAILABLE);
        const vm = this.vm;
        vm.pushString(thread.L, this.waitToken);
        vm.pushBytesArray(thread.L, answer.values);
        if (answer.error !== null) vm.pushString(thread.L, answer.error);
        const result = this.run(thread, answer.error === null ? 2 : 3, budgetMs, budgetCpuMicros);
        if (result !== SUSPENDED) return result ?? new ScriptFailure("dispatcher returned no reply");
        requests = this.waitRequests;
        budgetMs -= vm.spentMs;
        budgetCpuMicros -= vm.spentCpuMicros;
      }
    } finally {
      this.waiting--;
      if (this.state === State.Retiring && this.waiting === 0) {
        this.close();
        this.onRetired?.();
      }
    }
  }

  /**
   * Reads the wait cluster.lua yielded, (token, "server k1 k2\nserver2 k3"),
   * into waitRequests and pops it. False when the yield was not one.
   */
  private takeWaitRequest(thread: LuaThread): boolean {
    const vm = this.vm;
    const L = thread.L;
    const count = vm.resultCount;
    const isWait = count === 2 && vm.type(L, -2) === LUA_TSTRING && vm.toText(L, -2) === this.waitToken;
    if (isWait) {
      const lines = (vm.toLatin1(L, -1) ?? "").split("\n");
      this.waitRequests = lines.map((line) => {
        const words = line.split(" ");
        return { server: words[0], keys: words.slice(1) };
      });
    }
    vm.setTop(L, -count - 1);
    return isWait;
  }

  /** Tells dispatch.lua which bundled types intactMask reports on (options.watchedTypes) and reads the first report. */
  private watch(): void {
    this.intactMask = this.askIntactMask(this.watchRef, this.options.watchedTypes);
  }

  /** Calls dispatch.lua's watch or intactMask with `names`; 0 (none intact) when that call fails. */
  private askIntactMask(ref: bigint, names: readonly string[]): number {
    const vm = this.vm;
    vm.pushRef(vm.L, ref);
    for (const name of names) vm.pushString(vm.L, name);
    const ok = vm.call(names.length, 1, this.loadBudgetMs) === CallOutcome.Ok;
    const mask = ok ? vm.toNumber(vm.L, -1) : 0;
    vm.setTop(vm.L, BASE_TOP);
    return mask;
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
    if (outcome !== CallOutcome.Ok) error = `${script.name}: ${this.failureReason(outcome, vm.L)}`;
    else if (vm.type(vm.L, -1) !== LUA_TNIL) error = vm.toText(vm.L, -1);
    vm.setTop(vm.L, BASE_TOP);
    return error;
  }

  private runPrelude(): void {
    const vm = this.vm;
    const L = vm.L;
    pushHostTable(vm, {
      ...this.options,
      registerType: (name) => this.typeNames.add(name),
      decodedCacheBytes: decodedCacheBytes(this.options.memoryLimitBytes),
      rings: new Rings(this.options.hash),
      waitToken: this.waitToken,
    });
    for (const chunk of PRELUDE) {
      vm.setTop(L, 1);
      if (!vm.load(chunk.name, chunk.code)) throw new Error(`${chunk.name}: ${vm.toText(L, -1)}`);
      vm.pushValue(1);
      const outcome = vm.call(1, 1, this.loadBudgetMs);
      if (outcome !== CallOutcome.Ok) throw new Error(`${chunk.name}: ${this.failureReason(outcome, L)}`);
    }
    // Stack: host, entries (returned by dispatch.lua, the last chunk).
    vm.getField(L, 2, "dispatch");
    this.dispatchRef = BigInt(vm.ref());
    vm.getField(L, 2, "watch");
    this.watchRef = BigInt(vm.ref());
    vm.getField(L, 2, "intactMask");
    this.intactMaskRef = BigInt(vm.ref());
    vm.getField(L, 2, "loadScript");
    vm.copy(3, LOAD_SCRIPT_SLOT);
    vm.setTop(L, BASE_TOP);
  }

  /** Why the call or resume on L failed (its error is on top of L's stack), on one line. */
  private failureReason(outcome: CallOutcome, L: number): string {
    if (outcome === CallOutcome.Timeout) return TIMEOUT_MESSAGE;
    if (outcome === CallOutcome.OutOfMemory) return "script out of memory";
    const type = this.vm.type(L, -1);
    const message = type === LUA_TSTRING || type === LUA_TNUMBER ? this.vm.toText(L, -1) : null;
    return (message ?? "script raised a non-string error").replace(/[\r\n]+/g, " ");
  }
}
