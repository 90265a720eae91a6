/**
 * Virtual keys for the `get` command: `<type>:<method>:<objectKey>[:<arg>…]`
 * runs a Lua object method (see lua/dispatch.lua) and answers with its reply
 * block, or with a promise of it when the method waits on other servers
 * (lua/cluster.lua). Owns the Lua runtime's life: first build, reload on
 * SIGHUP (the old runtime finishes the keys still waiting), and a rebuild on a
 * fresh wasm instance if the engine ever fails outside Lua's own error
 * handling. Objects live in the store, so none of these loses data. Also owns
 * the pooled connections to the servers scripts wait on, and the bundled
 * set/map/quota methods served without Lua (native-objects.ts) for each
 * bundled type that user scripts leave as it is.
 */
import { LuaFactory, type LuaWasm } from "wasmoon";
import wasmPath from "wasmoon/dist/glue.wasm" with { type: "file" };
import { latin1String } from "../latin1.ts";
import type { OutputBuffer } from "../protocol/output.ts";
import type { ClusterInfo, LogLevel } from "./host-functions.ts";
import type { LuaSource } from "./lua-sources.ts";
import { NATIVE_TYPES, NativeObjects, NOT_SERVED } from "./native-objects.ts";
import { objectLogs } from "./object-logs.ts";
import { PeerPool } from "./peer-fetch.ts";
import { readScriptDir } from "./script-dir.ts";
import { type DispatchResult, decodedCacheBytes, type RuntimeOptions, ScriptFailure, ScriptRuntime, UNAVAILABLE } from "./script-runtime.ts";
import type { ObjectStoreAccess } from "./store-access.ts";

export interface ScriptingOptions {
  readonly store: ObjectStoreAccess;
  /** Directory of user object scripts (`*.lua`); none when absent or "". */
  readonly scriptsDir?: string;
  /** Time budget of one virtual-key call: it is stopped once it has taken this long and the process has used this much CPU time since it began. */
  readonly timeoutMs: number;
  /** Lua heap limit. */
  readonly memoryMb: number;
  readonly log?: (level: string, msg: string) => void;
  /** Milliseconds since the epoch (default Date.now); quota windows follow it. */
  readonly now?: () => number;
  /** Time another server has to answer getFromServer/getInParallel (default 500, as --peer-timeout-ms). */
  readonly peerTimeoutMs?: number;
  /** Key hash of newConsistent's rings (default md5, as --hash). */
  readonly hash?: string;
  /** With --cluster: the --peers list and this node's "host:port" (newConsistent(), getClusterServers(), getSelfServer()). */
  readonly cluster?: ClusterInfo | null;
}

export type { ClusterInfo };

export interface Scripting {
  /**
   * For a `get` key, a latin1 string (one character per byte). Returns the complete reply block for
   * this key as bytes: VALUE blocks (`VALUE <key> 0 <n>\r\n<payload>\r\n`, key bytes as received),
   * none at all when the handler answered nothing (a miss: the other keys and END still follow), or
   * `SERVER_ERROR <msg>\r\n` on a Lua error, a timeout or a reply that is not VALUE blocks. Null
   * when the key is not a virtual key (type or method not defined: then the server does a plain
   * lookup). A handler that waits on other servers gives a promise of the reply instead, which never
   * rejects. Never throws.
   */
  handleGetKey(key: string): Uint8Array | Promise<Uint8Array> | null;
  /**
   * The common calls of the bundled set, map and quota (one member, a count, a quota check),
   * served without Lua straight from the `get` key's bytes buf[k, k + klen) into out: 0 when
   * their VALUE block was written, the length of the `SERVER_ERROR` line written when the call
   * failed after storing its change, -1 (nothing written) for any other key, which then goes
   * to handleGetKey. Never throws.
   */
  serveNative(buf: Uint8Array, k: number, klen: number, out: OutputBuffer): number;
  /** The part of a key that decides its cluster owner: a virtual key's object key, else the key. */
  routingKey(key: string): string;
  /** Re-read the scripts dir (SIGHUP). Stored objects survive. Returns a list of errors like "file.lua:3: ..." */
  reload(): Promise<string[]>;
  close(): void;
}

/** Builds the engine and loads the scripts; load errors are logged. Throws only if Lua cannot start at all. */
export async function createScripting(opts: ScriptingOptions): Promise<Scripting> {
  if (!(opts.timeoutMs > 0)) throw new RangeError(`timeoutMs must be positive, got ${opts.timeoutMs}`);
  if (!(opts.memoryMb > 0)) throw new RangeError(`memoryMb must be positive, got ${opts.memoryMb}`);
  const engine = new ScriptingEngine(newLuaModule(), opts);
  for (const error of await engine.load()) engine.log("error", `scripts: ${error}`);
  return engine;
}

/** A new wasm instance (its own heap); states on it share nothing with other instances. */
function newLuaModule(): Promise<LuaWasm> {
  return new LuaFactory(wasmPath).getLuaModule();
}

const encoder = new TextEncoder();
const MAX_ERROR_LENGTH = 512;
const DEFAULT_PEER_TIMEOUT_MS = 500;

function serverError(reason: string): Uint8Array {
  return encoder.encode(`SERVER_ERROR ${reason.slice(0, MAX_ERROR_LENGTH)}\r\n`);
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

class ScriptingEngine implements Scripting {
  private runtime: ScriptRuntime | null = null;
  /** Type names of the current runtime, kept while a failed one is being replaced. */
  private typeNames: ReadonlySet<string> = new Set();
  /** The user scripts the current runtime was built from. */
  private userScripts: readonly LuaSource[] = [];
  /** The bundled set/map/quota methods served without Lua, for the types the runtime says are intact. */
  private native: NativeObjects | null = null;
  private readonly runtimeOptions: RuntimeOptions;
  private readonly peers: PeerPool;
  /** Replaced runtimes still finishing keys that wait on other servers. */
  private readonly retiring = new Set<ScriptRuntime>();
  private restarting = false;
  private closed = false;

  constructor(
    /** The wasm instance runtimes are built on; replaced when one fails. */
    private luaWasm: Promise<LuaWasm>,
    private readonly opts: ScriptingOptions,
  ) {
    this.peers = new PeerPool(opts.peerTimeoutMs ?? DEFAULT_PEER_TIMEOUT_MS);
    this.runtimeOptions = {
      store: opts.store,
      now: opts.now ?? Date.now,
      log: (level, msg) => this.log(level, msg),
      timeoutMs: opts.timeoutMs,
      memoryLimitBytes: opts.memoryMb * 1024 * 1024,
      hash: opts.hash ?? "md5",
      cluster: opts.cluster ?? null,
      fetch: (requests) => this.peers.fetch(requests),
      watchedTypes: NATIVE_TYPES,
    };
  }

  handleGetKey(key: string): Uint8Array | Promise<Uint8Array> | null {
    const colon = key.indexOf(":");
    if (colon < 0 || !this.typeNames.has(key.substring(0, colon))) return null;
    const runtime = this.runtime;
    if (runtime === null) {
      if (this.closed) return null;
      queueMicrotask(() => this.restart());
      return serverError(UNAVAILABLE);
    }
    const native = this.native?.handle(key, runtime) ?? null;
    if (native !== null) return this.reply(key, native);
    let result: DispatchResult;
    try {
      result = runtime.dispatch(key);
    } catch (e) {
      return this.engineFailed(runtime, e);
    }
    if (result instanceof Promise) {
      return result.then(
        (reply) => this.reply(key, reply),
        (e: unknown) => this.engineFailed(runtime, e),
      );
    }
    return result === null ? null : this.reply(key, result);
  }

  serveNative(buf: Uint8Array, k: number, klen: number, out: OutputBuffer): number {
    const runtime = this.runtime;
    if (runtime === null || this.native === null) return NOT_SERVED;
    const served = this.native.serve(buf, k, klen, out, runtime);
    if (!(served instanceof ScriptFailure)) return served;
    const error = this.reply(latin1String(buf, k, k + klen), served);
    out.put(error);
    return error.length;
  }

  routingKey(key: string): string {
    const first = key.indexOf(":");
    if (first < 0 || !this.typeNames.has(key.substring(0, first))) return key;
    const second = key.indexOf(":", first + 1);
    if (second < 0) return key;
    const third = key.indexOf(":", second + 1);
    return key.substring(second + 1, third < 0 ? key.length : third);
  }

  async reload(): Promise<string[]> {
    try {
      return await this.load();
    } catch (e) {
      return [`scripts not reloaded: ${describe(e)}`];
    }
  }

  /** Reads the scripts dir and swaps in a runtime built from it; throws when Lua cannot start. */
  async load(): Promise<string[]> {
    const dir = this.opts.scriptsDir;
    const read = dir ? await readScriptDir(dir) : { scripts: [], errors: [] };
    const luaWasm = await this.luaWasm;
    if (this.closed) return [];
    return [...read.errors, ...this.install(luaWasm, read.scripts)];
  }

  close(): void {
    this.closed = true;
    this.runtime?.close();
    this.runtime = null;
    for (const runtime of this.retiring) runtime.close();
    this.retiring.clear();
    this.peers.close();
  }

  log(level: LogLevel, msg: string): void {
    this.opts.log?.(level, msg);
  }

  private reply(key: string, result: Uint8Array | ScriptFailure): Uint8Array {
    if (!(result instanceof ScriptFailure)) return result;
    this.log("warn", `virtual key ${key}: ${result.reason}`);
    return serverError(result.reason);
  }

  /**
   * Something other than a Lua error escaped (a wasm trap, the JS stack
   * running out): the state, perhaps the heap, is corrupt. The restart is
   * deferred, so that a stack that just ran out has unwound first.
   */
  private engineFailed(runtime: ScriptRuntime, e: unknown): Uint8Array {
    if (this.runtime === runtime) {
      this.runtime = null;
      queueMicrotask(() => {
        this.log("error", `scripting: Lua engine failed (${describe(e)}); starting a new one`);
        this.restart();
      });
    }
    return serverError(UNAVAILABLE);
  }

  /** Swaps in a runtime built from `userScripts`; returns their load errors. */
  private install(luaWasm: LuaWasm, userScripts: readonly LuaSource[]): string[] {
    const { runtime, errors } = ScriptRuntime.create(luaWasm, this.runtimeOptions, userScripts);
    const old = this.runtime;
    this.runtime = runtime;
    this.typeNames = runtime.typeNames;
    this.userScripts = userScripts;
    const store = this.opts.store;
    this.native = new NativeObjects(store, objectLogs(store), decodedCacheBytes(this.runtimeOptions.memoryLimitBytes), this.runtimeOptions.now);
    if (old !== null) {
      this.retiring.add(old);
      old.retire(() => this.retiring.delete(old));
    }
    return errors;
  }

  /** Loads the same scripts into a new wasm instance; objects live in the store, so nothing is lost. */
  private restart(): void {
    if (this.restarting || this.closed || this.runtime !== null) return;
    this.restarting = true;
    this.luaWasm = newLuaModule();
    this.luaWasm
      .then((luaWasm) => {
        if (this.closed || this.runtime !== null) return;
        this.install(luaWasm, this.userScripts);
        this.log("info", "scripting: Lua engine restarted");
      })
      .catch((err: unknown) => this.log("error", `scripting: Lua engine restart failed: ${describe(err)}`))
      .finally(() => {
        this.restarting = false;
      });
  }
}
