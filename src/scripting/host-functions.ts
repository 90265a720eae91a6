/**
 * The JS functions the Lua prelude is handed (as the private `host` table,
 * never as globals): store access, the clock, logging, type registration and
 * consistent-hash rings. Scripts reach them only through api.lua, core.lua and
 * cluster.lua, built on these. Keys and type names cross as latin1 strings
 * (one character per byte), so their bytes reach the store and the protocol
 * unchanged.
 */
import { parseServerList } from "../cluster/ketama.ts";
import { type Rings, serverLabel } from "./consistent.ts";
import { type LuaVm, TIMEOUT_MESSAGE } from "./lua-vm.ts";
import { objectLogs } from "./object-logs.ts";
import type { LogState, ObjectStoreAccess } from "./store-access.ts";

export type LogLevel = "debug" | "info" | "warn" | "error";

/** Lua scripts log with the original's numbers: 0 debug, 1 info, 2 warn, 3 error. */
const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];
const MAX_FLAGS = 2 ** 32 - 1;

export interface HostDependencies {
  readonly store: ObjectStoreAccess;
  readonly log: (level: LogLevel, msg: string) => void;
  /** Milliseconds since the epoch. */
  readonly now: () => number;
  /** Called when an object script makes `name` a type. */
  readonly registerType: (name: string) => void;
  /** Encoded bytes of decoded objects core.lua may keep between calls. */
  readonly decodedCacheBytes: number;
  readonly rings: Rings;
  /** With --cluster: the --peers list as given, and this node as "host:port". */
  readonly cluster: ClusterInfo | null;
  /** First value of every yield the engine serves (and of every resume it makes), so that no script's own yield is taken for a wait. */
  readonly waitToken: string;
}

export interface ClusterInfo {
  readonly peers: string;
  readonly self: string;
}

/** Pushes the host table onto the main thread's stack. */
export function pushHostTable(vm: LuaVm, deps: HostDependencies): void {
  const { store, rings } = deps;
  const logs = objectLogs(store);
  /** A log's version and length for Lua, or false when it could not be stored (no memory). */
  const pushLogState = (L: number, state: LogState | 0): number => {
    if (state === 0) {
      vm.pushBoolean(L, false);
      return 1;
    }
    vm.pushNumber(L, state.version);
    vm.pushNumber(L, state.length);
    return 2;
  };
  vm.pushTable(
    vm.L,
    {
      // get(key) -> data, flags, exptime | nothing
      get: (L) => {
        const item = store.get(vm.checkLatin1(L, 1));
        if (item === null) return 0;
        vm.pushBytes(L, item.data);
        vm.pushNumber(L, item.flags);
        vm.pushNumber(L, item.exptime);
        return 3;
      },
      // set(key, data, flags, exptime) -> version | false when the store has no room
      set: (L) => {
        const key = vm.checkLatin1(L, 1);
        const data = vm.checkBytes(L, 2);
        const flags = vm.checkNumber(L, 3);
        const exptime = vm.checkNumber(L, 4);
        if (!Number.isInteger(flags) || flags < 0 || flags > MAX_FLAGS) throw new Error(`invalid flags: ${flags}`);
        if (!Number.isInteger(exptime)) throw new Error(`invalid expiry time: ${exptime}`);
        // The new version, or false when the store has no room.
        const version = store.set(key, data, flags, exptime);
        if (version === 0) vm.pushBoolean(L, false);
        else vm.pushNumber(L, version);
        return 1;
      },
      // version(key) -> the item's version (changed by every write) | nothing when missing
      version: (L) => {
        const version = store.version(vm.checkLatin1(L, 1));
        if (version === null) return 0;
        vm.pushNumber(L, version);
        return 1;
      },
      // readLog(key, version, length) -> version, length[, from, bytes] | nothing when missing
      // (bytes: what the object gained after `length` when still at `version`, else all of it,
      // from = 0; neither when it is unchanged)
      readLog: (L) => {
        const length = vm.checkNumber(L, 3);
        const read = logs.read(vm.checkLatin1(L, 1), vm.checkNumber(L, 2), length);
        if (read === null) return 0;
        vm.pushNumber(L, read.version);
        vm.pushNumber(L, read.length);
        if (read.from === length && read.length === length) return 2;
        vm.pushNumber(L, read.from);
        vm.pushBytes(L, read.bytes);
        return 4;
      },
      // appendLog(key, version, length, bytes) -> version, length | false (no memory) | nothing
      // (the object is not at version/length)
      appendLog: (L) => {
        const state = logs.append(vm.checkLatin1(L, 1), vm.checkNumber(L, 2), vm.checkNumber(L, 3), vm.checkBytes(L, 4));
        return state === null ? 0 : pushLogState(L, state);
      },
      // storeLog(key, bytes) -> version, length | false (no memory): flags 0, never expiring, room to append
      storeLog: (L) => pushLogState(L, logs.store(vm.checkLatin1(L, 1), vm.checkBytes(L, 2))),
      delete: (L) => {
        vm.pushBoolean(L, store.delete(vm.checkLatin1(L, 1)));
        return 1;
      },
      // keys(prefix) -> array | nothing when no key matches
      keys: (L) => {
        const keys = store.keysWithPrefix(vm.checkLatin1(L, 1));
        if (keys.length === 0) return 0;
        vm.pushLatin1Array(L, keys);
        return 1;
      },
      // evict(bytes) -> bytes freed
      evict: (L) => {
        const bytes = vm.checkNumber(L, 1);
        if (!(bytes >= 0)) throw new Error(`invalid byte count: ${bytes}`);
        vm.pushNumber(L, store.evictLRU(bytes));
        return 1;
      },
      // now() -> seconds since the epoch, fractional
      now: (L) => {
        vm.pushNumber(L, deps.now() / 1000);
        return 1;
      },
      log: (L) => {
        const level = LOG_LEVELS[vm.checkNumber(L, 1)] ?? "info";
        deps.log(level, vm.checkString(L, 2));
        return 0;
      },
      registerType: (L) => {
        deps.registerType(vm.checkLatin1(L, 1));
        return 0;
      },
      // ringNew(list) -> id | nil, message
      ringNew: (L) => {
        let id: number;
        try {
          id = rings.create(vm.checkString(L, 1));
        } catch (e) {
          vm.pushNil(L);
          vm.pushString(L, e instanceof Error ? e.message : String(e));
          return 2;
        }
        vm.pushNumber(L, id);
        return 1;
      },
      // ringFind(id, key) -> "host:port" | nothing when no server is live
      ringFind: (L) => {
        const server = rings.serverFor(vm.checkNumber(L, 1), vm.checkBytes(L, 2));
        if (server === null) return 0;
        vm.pushString(L, server);
        return 1;
      },
      ringCount: (L) => {
        vm.pushNumber(L, rings.serverCount(vm.checkNumber(L, 1)));
        return 1;
      },
      ringIsAvailable: (L) => {
        vm.pushBoolean(L, rings.isAvailable(vm.checkNumber(L, 1), vm.checkString(L, 2)));
        return 1;
      },
      // ringSetAvailable(id, name, up) -> false when the ring has no such server
      ringSetAvailable: (L) => {
        vm.pushBoolean(L, rings.setAvailable(vm.checkNumber(L, 1), vm.checkString(L, 2), vm.toBoolean(L, 3)));
        return 1;
      },
      ringFree: (L) => {
        rings.free(vm.checkNumber(L, 1));
        return 0;
      },
    },
    {
      TIMEOUT_MESSAGE,
      DECODED_CACHE_BYTES: deps.decodedCacheBytes,
      WAIT_TOKEN: deps.waitToken,
      CLUSTER_PEERS: deps.cluster?.peers ?? "",
      CLUSTER_SERVERS: deps.cluster ? parseServerList(deps.cluster.peers).map(serverLabel).join(",") : "",
      CLUSTER_SELF: deps.cluster?.self ?? "",
    },
  );
}
