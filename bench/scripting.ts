/**
 * In-process throughput of virtual keys (Scripting.handleGetKey over the real
 * arena store, no network): `bun run bench/scripting.ts [seconds per case] [sizes] [--lua]`,
 * e.g. `bun run bench/scripting.ts 0.6 10,1000,100000`. With --lua every call enters Lua
 * (a user script wraps the bundled methods, which turns off native-objects.ts for them).
 * The "from bytes" rows are the path a `get` over TCP takes (Scripting.serveNative: the key's
 * bytes in, the VALUE block written into an output buffer).
 * Each case runs three rounds after a warm-up; the table shows the median, in
 * operations per second of this thread's CPU time (steadier than wall time
 * when other processes share the cores).
 * Sets and maps of each size are planted directly in the store (marshalled,
 * as the objects store them), so building a large one costs nothing here.
 * "put+delete" alternates adding and removing one extra member, so every call
 * really changes the object; the "fresh members" and "random" rows ask as
 * bench/objects-vs-redis.ts does (a new member each time, members and fields
 * at random), which a cache of member strings finds harder than one member
 * over and over or members in order. The breakdown rows time the pieces a
 * change used to cost: copying the object out of the arena, storing it back,
 * and marshalling / unmarshalling it in Lua.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { latin1Bytes, latin1String } from "../src/latin1.ts";
import { OutputBuffer } from "../src/protocol/output.ts";
import { createScripting } from "../src/scripting/engine.ts";
import { StoreObjectAccess } from "../src/store/object-access.ts";
import { Store } from "../src/store/store.ts";

const positional = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const secondsPerRound = Number(positional[0] ?? "1") / 3;
const sizes = (positional[1] ?? "10,1000,100000").split(",").map(Number);

// A user script that times marshal/unmarshal of a stored object inside Lua.
const scriptsDir = mkdtempSync(join(tmpdir(), "bench-scripting-"));
writeFileSync(
  join(scriptsDir, "codec.lua"),
  `codec = {}
function codec.unmarshal(cmd, key, k) return #table.unmarshal(getHashMap():get(storageKey("set", k)):getData()) end
function codec.marshal(cmd, key, k) return #table.marshal(table.unmarshal(getHashMap():get(storageKey("set", k)):getData())) end`,
);
const luaDir = mkdtempSync(join(tmpdir(), "bench-scripting-lua-"));
writeFileSync(
  join(luaDir, "wrap.lua"),
  `for _, t in ipairs({ set, map, quota }) do
  for name, fn in pairs(t) do t[name] = function(...) return fn(...) end end
end`,
);

const access = new StoreObjectAccess(new Store({ memoryBytes: 256 * 1024 * 1024, maxItemBytes: 32 * 1024 * 1024 }));
// The bundled set/map/quota methods run without Lua (native-objects.ts) while no user script
// changes them; `--lua` gives the main engine a script that wraps them all, so that every call enters Lua.
const luaOnly = process.argv.includes("--lua");
const s = await createScripting({ store: access, scriptsDir: luaOnly ? luaDir : undefined, timeoutMs: 10_000, memoryMb: 256 });
const codec = await createScripting({ store: access, scriptsDir, timeoutMs: 10_000, memoryMb: 256 });
rmSync(scriptsDir, { recursive: true });
rmSync(luaDir, { recursive: true });

function run(key: string, engine = s): string {
  const reply = engine.handleGetKey(key);
  if (reply instanceof Promise) throw new Error(`${key} waited on other nodes`);
  return reply === null ? "null" : new TextDecoder().decode(reply);
}

const out = new OutputBuffer();

/** A `get` line's key as serveNative takes it; falls back to handleGetKey as the protocol does. */
function serve(line: Uint8Array): void {
  out.length = 0;
  if (s.serveNative(line, 4, line.length - 6, out) < 0) run(latin1String(line, 4, line.length - 2));
}

const getLines = (keys: string[]): Uint8Array[] => keys.map((key) => latin1Bytes(`get ${key}\r\n`));

function setup(keys: string[]): void {
  for (const key of keys) {
    const text = run(key);
    if (!text.startsWith("VALUE")) throw new Error(`setup failed at ${key}: ${text}`);
  }
}

/** The lmarshal bytes of a flat table of strings to strings (map) or to 1 (set). */
function marshalFlat(entries: [string, string | 1][]): Uint8Array {
  const parts: Buffer[] = [Buffer.from([0x8e])];
  const str = (v: string) => {
    const b = Buffer.alloc(5 + v.length);
    b[0] = 4;
    b.writeUInt32LE(v.length, 1);
    b.write(v, 5, "latin1");
    return b;
  };
  for (const [k, v] of entries) {
    parts.push(str(k));
    if (v === 1) {
      const b = Buffer.alloc(9);
      b[0] = 3;
      b.writeDoubleLE(1, 1);
      parts.push(b);
    } else parts.push(str(v));
  }
  return new Uint8Array(Buffer.concat(parts));
}

/** This thread's CPU time in µs: on a shared machine it is steadier than wall time. */
function cpuMicros(): number {
  const usage = process.threadCpuUsage();
  return usage.user + usage.system;
}

/** Operations per CPU second of `op(i)`, run for about `seconds` of wall time. */
function round(op: (i: number) => void, seconds: number): number {
  const deadline = performance.now() + seconds * 1000;
  const started = cpuMicros();
  let n = 0;
  while (performance.now() < deadline) {
    for (let j = 0; j < 16; j++) op(n++);
  }
  return (n / (cpuMicros() - started)) * 1e6;
}

function measure(op: (i: number) => void): number {
  round(op, Math.min(0.1, secondsPerRound));
  const rates = [round(op, secondsPerRound), round(op, secondsPerRound), round(op, secondsPerRound)].sort((a, b) => a - b);
  return rates[1];
}

/** Request lines of the random and fresh-member cases, cycled through. */
const RANDOM_LINES = 1 << 16;

function randomIndex(n: number): number {
  return Math.floor(Math.random() * n);
}

const cases: [string, (i: number) => void][] = [];
setup(["quota:new:q:1000000000000:day"]);
cases.push(["quota:addandcheck:q:1", () => run("quota:addandcheck:q:1")]);

for (const n of sizes) {
  const members = Array.from({ length: n }, (_, i) => `m${i}`);
  access.set(`\x01set$s${n}`, marshalFlat(members.map((m) => [m, 1])), 0, 0);
  access.set(`\x01map$m${n}`, marshalFlat(members.map((m) => [m, `v${m}`])), 0, 0);
  const exist = members.map((m) => `set:exist:s${n}:${m}`);
  const get = members.map((m) => `map:get:m${n}:${m}`);
  const existLines = getLines(exist);
  const getFieldLines = getLines(get);
  const [setPut, setDelete, mapPut, mapDelete] = getLines([`set:put:s${n}:extra`, `set:delete:s${n}:extra`, `map:put:m${n}:extra:x`, `map:delete:m${n}:extra`]);
  // As bench/objects-vs-redis.ts asks: a fresh member put then deleted, random members and fields.
  const freshPutDelete = getLines(Array.from({ length: RANDOM_LINES }, (_, i) => (i % 2 === 0 ? `set:put:s${n}:c${i}` : `set:delete:s${n}:c${i - 1}`)));
  const randomExist = getLines(Array.from({ length: RANDOM_LINES }, () => `set:exist:s${n}:${members[randomIndex(n)]}`));
  const randomGet = getLines(Array.from({ length: RANDOM_LINES }, () => `map:get:m${n}:${members[randomIndex(n)]}`));
  const randomPut = getLines(Array.from({ length: RANDOM_LINES }, (_, i) => `map:put:m${n}:${members[randomIndex(n)]}:v${i}`));
  const encoded = access.get(`\x01set$s${n}`)!.data;
  const label = `${n.toLocaleString("en-US")} members`;
  cases.push(
    [`set:put+delete, ${label}`, (i) => run(i % 2 === 0 ? `set:put:s${n}:extra` : `set:delete:s${n}:extra`)],
    [`set:exist, ${label}`, (i) => run(exist[i % n])],
    [`set:count, ${label}`, () => run(`set:count:s${n}`)],
    [`map:put+delete, ${label}`, (i) => run(i % 2 === 0 ? `map:put:m${n}:extra:x` : `map:delete:m${n}:extra`)],
    [`map:get, ${label}`, (i) => run(get[i % n])],
    [`set:put+delete from bytes, ${label}`, (i) => serve(i % 2 === 0 ? setPut : setDelete)],
    [`set:exist from bytes, ${label}`, (i) => serve(existLines[i % n])],
    [`map:put+delete from bytes, ${label}`, (i) => serve(i % 2 === 0 ? mapPut : mapDelete)],
    [`map:get from bytes, ${label}`, (i) => serve(getFieldLines[i % n])],
    [`set:put+delete from bytes, fresh members, ${label}`, (i) => serve(freshPutDelete[i % RANDOM_LINES])],
    [`set:exist from bytes, random members, ${label}`, (i) => serve(randomExist[i % RANDOM_LINES])],
    [`map:put from bytes, random fields, ${label}`, (i) => serve(randomPut[i % RANDOM_LINES])],
    [`map:get from bytes, random fields, ${label}`, (i) => serve(randomGet[i % RANDOM_LINES])],
    [`  breakdown: copy out of the arena (${encoded.length} B)`, () => access.get(`\x01set$s${n}`)],
    [`  breakdown: store into the arena (${encoded.length} B)`, () => access.set(`\x01bench$${n}`, encoded, 0, 0)],
    [`  breakdown: get + unmarshal in Lua`, () => run(`codec:unmarshal:s${n}`, codec)],
    [`  breakdown: get + unmarshal + marshal in Lua`, () => run(`codec:marshal:s${n}`, codec)],
  );
}
cases.push(["user:123 (plain key, not Lua)", () => s.handleGetKey("user:123")]);

const rows = cases.map(([name, op]) => {
  const rate = measure(op);
  return { case: name, "ops per CPU s": Math.round(rate).toLocaleString("en-US"), "CPU µs/op": (1e6 / rate).toFixed(2) };
});
console.table(rows);
s.close();
codec.close();
