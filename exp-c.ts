import wasmPath from "wasmoon/dist/glue.wasm" with { type: "file" };
import { LuaFactory, LuaGlobal } from "wasmoon";
const f = new LuaFactory(wasmPath);
const lw = await f.getLuaModule();
const g = new LuaGlobal(lw, true);
g.setMemoryMax(8 * 1024 * 1024);
const m: any = lw.module; const L = g.address;
lw.luaL_openlibs(L);
const lenPtr = m._malloc(8);
function run(code: string) {
  const st = lw.luaL_loadstring(L, code);
  let r = st === 0 ? m._lua_pcallk(L, 0, 1, 0, 0, 0) : st;
  const p = m._lua_tolstring(L, -1, lenPtr);
  const s = p ? new TextDecoder().decode(m.HEAPU8.subarray(p, p + m.HEAPU32[lenPtr>>2])) : "(" + m._lua_type(L, -1) + ")";
  m._lua_settop(L, 0);
  console.log(r, s.slice(0, 200), "mem", g.getMemoryUsed());
}
// JS C function that raises error
const errFn = m.addFunction((L: number) => { m._lua_pushstring(L, lw.module.stringToNewUTF8("boom from js")); return m._lua_error(L); }, "ii");
m._lua_pushcclosure(L, errFn, 0); m._lua_setglobal(L, lw.module.stringToNewUTF8("jserr"));
const bigFn = m.addFunction((L: number) => { const p = m._malloc(4<<20); m._lua_pushlstring(L, p, 4<<20); m._lua_pushlstring(L, p, 4<<20); m._free(p); return 2; }, "ii");
m._lua_pushcclosure(L, bigFn, 0); m._lua_setglobal(L, lw.module.stringToNewUTF8("jsbig"));
run("return 1+1");
run("jserr()");
run("local ok, e = pcall(jserr) return tostring(ok) .. e");
run("local a, b = jsbig() return #a");
run("return 'after'");
run("local t = {} for i=1,1e8 do t[i] = i end");
run("return 'after mem ' .. collectgarbage('count')");
run("local function f() return pcall(f) end return tostring(f())");
run("local t = setmetatable({}, {__index=function(t,k) return t[k] end}) return t.x");
run("local function r(n) return n == 0 and 0 or 1 + r(n-1) end return r(150000)");
run("local co = coroutine.wrap(function() local function f() return coroutine.wrap(f)() end return f() end) return co()");
run("return string.format('%.14g %.14g', 75.0, 1/3) .. tostring(math.tointeger(3.0))");
run("return 'alive'");
