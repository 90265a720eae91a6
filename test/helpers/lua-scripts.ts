/**
 * A user script that wraps every bundled set, map and quota method in a function of its own, so
 * that an engine loading it serves every call of those types in Lua (the native path serves a
 * type only while its methods are the bundled ones).
 */
export const WRAP_ALL_BUNDLED = `for _, t in ipairs({ set, map, quota }) do
  for name, fn in pairs(t) do t[name] = function(...) return fn(...) end end
end`;
