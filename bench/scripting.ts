/**
 * In-process throughput of virtual keys (Scripting.handleGetKey over the real
 * arena store, no network): `bun run bench/scripting.ts [seconds per case]`.
 * Each case runs three rounds after a warm-up; the table shows the median.
 * Putting a member the set already has changes nothing, so the set is not
 * re-encoded; the put/delete case changes the 1000-member set every call.
 */
import { createScripting } from "../src/scripting/engine.ts";
import { StoreObjectAccess } from "../src/store/object-access.ts";
import { Store } from "../src/store/store.ts";


const secondsPerRound = Number(process.argv[2] ?? "1") / 3;
const s = await createScripting({ store: new StoreObjectAccess(new Store({ memoryBytes: 64 * 1024 * 1024, maxItemBytes: 1024 * 1024 })), timeoutMs: 100, memoryMb: 64 });

function setup(keys: string[]): void {
  for (const key of keys) {
    const reply = s.handleGetKey(key);
    if (reply instanceof Promise) throw new Error(`setup: ${key} waited on other nodes`);
    const text = reply === null ? "null" : new TextDecoder().decode(reply);
    if (!text.startsWith("VALUE")) throw new Error(`setup failed at ${key}: ${text}`);
  }
}

/** Operations per second of `op(i)`, run for about `seconds`. */
function round(op: (i: number) => void, seconds: number): number {
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  let n = 0;
  while (performance.now() < deadline) {
    for (let j = 0; j < 256; j++) op(n++);
  }
  return (n / (performance.now() - started)) * 1000;
}

function measure(op: (i: number) => void): number {
  round(op, Math.min(0.2, secondsPerRound));
  const rates = [round(op, secondsPerRound), round(op, secondsPerRound), round(op, secondsPerRound)].sort((a, b) => a - b);
  return rates[1];
}

setup(["quota:new:q:1000000000000:day", "set:new:s"]);
setup(Array.from({ length: 1000 }, (_, i) => `set:put:s:${i}`));

const setKeys = Array.from({ length: 1000 }, (_, i) => `set:put:s:${i}`);
const existKeys = Array.from({ length: 1000 }, (_, i) => `set:exist:s:${i}`);
const cases: [string, (i: number) => void][] = [
  ["quota:addandcheck:q:1", () => s.handleGetKey("quota:addandcheck:q:1")],
  ["set:put:s:<i % 1000> (1000 members)", (i) => s.handleGetKey(setKeys[i % 1000])],
  ["set:put / set:delete of a 1001st member", (i) => s.handleGetKey(i % 2 === 0 ? "set:put:s:extra" : "set:delete:s:extra")],
  ["set:exist:s:<i % 1000> (1000 members)", (i) => s.handleGetKey(existKeys[i % 1000])],
  ["user:123 (plain key, not Lua)", () => s.handleGetKey("user:123")],
];

const rows = cases.map(([name, op]) => {
  const rate = measure(op);
  return { case: name, "ops/s": Math.round(rate).toLocaleString("en-US"), "µs/op": (1e6 / rate).toFixed(2) };
});
console.table(rows);
s.close();
