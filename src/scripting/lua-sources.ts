/**
 * The Lua sources compiled into the executable (import attributes make
 * `bun build --compile` embed them).
 */
import apiLua from "./lua/api.lua" with { type: "text" };
import clusterLua from "./lua/cluster.lua" with { type: "text" };
import dispatchLua from "./lua/dispatch.lua" with { type: "text" };
import marshalLua from "./lua/marshal.lua" with { type: "text" };
import sandboxLua from "./lua/sandbox.lua" with { type: "text" };
import coreLua from "./objects/core.lua" with { type: "text" };
import mapLua from "./objects/map.lua" with { type: "text" };
import quotaLua from "./objects/quota.lua" with { type: "text" };
import setLua from "./objects/set.lua" with { type: "text" };
import swcounterLua from "./objects/swcounter.lua" with { type: "text" };

export interface LuaSource {
  /** File name, used as the chunk name in error messages. */
  readonly name: string;
  readonly code: string;
}

/**
 * Run in this order, each with the private host table as its argument. Their
 * globals are the environment; none of them is an object type. dispatch.lua
 * comes last and returns the entry points.
 */
export const PRELUDE: readonly LuaSource[] = [
  { name: "sandbox.lua", code: sandboxLua },
  { name: "marshal.lua", code: marshalLua },
  { name: "api.lua", code: apiLua },
  { name: "cluster.lua", code: clusterLua },
  { name: "core.lua", code: coreLua },
  { name: "dispatch.lua", code: dispatchLua },
];

/** Object scripts shipped with the server, loaded before the user's. */
export const BUNDLED_OBJECTS: readonly LuaSource[] = [
  { name: "map.lua", code: mapLua },
  { name: "set.lua", code: setLua },
  { name: "quota.lua", code: quotaLua },
  { name: "swcounter.lua", code: swcounterLua },
];
