/**
 * The JS functions the Lua prelude is handed (as the private `host` table,
 * never as globals): store access, the clock, logging and type registration.
 * Scripts reach the store only through api.lua and core.lua, built on these.
 */
import { type LuaVm, TIMEOUT_MESSAGE } from "./lua-vm.ts";
import type { ObjectStoreAccess } from "./store-access.ts";

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
}

/** Pushes the host table onto the main thread's stack. */
export function pushHostTable(vm: LuaVm, deps: HostDependencies): void {
  const { store } = deps;
  vm.pushTable(
    vm.L,
    {
      // get(key) -> data, flags, exptime | nothing
      get: (L) => {
        const item = store.get(vm.checkString(L, 1));
        if (item === null) return 0;
        vm.pushBytes(L, item.data);
        vm.pushNumber(L, item.flags);
        vm.pushNumber(L, item.exptime);
        return 3;
      },
      // set(key, data, flags, exptime) -> false when the store has no room
      set: (L) => {
        const key = vm.checkString(L, 1);
        const data = vm.checkBytes(L, 2);
        const flags = vm.checkNumber(L, 3);
        const exptime = vm.checkNumber(L, 4);
        if (!Number.isInteger(flags) || flags < 0 || flags > MAX_FLAGS) throw new Error(`invalid flags: ${flags}`);
        if (!Number.isInteger(exptime)) throw new Error(`invalid expiry time: ${exptime}`);
        vm.pushBoolean(L, store.set(key, data, flags, exptime));
        return 1;
      },
      delete: (L) => {
        vm.pushBoolean(L, store.delete(vm.checkString(L, 1)));
        return 1;
      },
      // keys(prefix) -> array | nothing when no key matches
      keys: (L) => {
        const keys = store.keysWithPrefix(vm.checkString(L, 1));
        if (keys.length === 0) return 0;
        vm.pushStringArray(L, keys);
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
        deps.registerType(vm.checkString(L, 1));
        return 0;
      },
    },
    { TIMEOUT_MESSAGE, DECODED_CACHE_BYTES: deps.decodedCacheBytes },
  );
}
