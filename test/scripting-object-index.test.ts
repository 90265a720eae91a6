/**
 * The decoded object native-objects.ts serves from (src/scripting/object-index.ts): after any run
 * of puts, removals, tails taken from another writer and compactions, every key answers what a
 * plain Map of the same changes holds, and the log it compacts to decodes to the same object.
 */
import { describe, expect, test } from "bun:test";
import { latin1Bytes, latin1String } from "../src/latin1.ts";
import { MAGIC, NotFlat, ObjectIndex, T_NIL, T_NUMBER, T_STRING, readU32, valueOffset } from "../src/scripting/object-index.ts";
import { rng } from "./helpers/rng.ts";

/** What the index holds, read back through its own API. */
function contents(index: ObjectIndex): Map<string, string | number> {
  const out = new Map<string, string | number>();
  const { log } = index;
  index.forEachLive((pair) => {
    const value = valueOffset(log, pair);
    const key = latin1String(log, pair + 5, value);
    out.set(key, log[value] === T_NUMBER ? index.numberAt(pair) : latin1String(log, value + 5, value + 5 + readU32(log, value + 1)));
  });
  return out;
}

function expectSame(index: ObjectIndex, reference: Map<string, string | number>, probes: string[]): void {
  expect(index.count).toBe(reference.size);
  expect(contents(index)).toEqual(reference);
  for (const key of probes) {
    const k = latin1Bytes(key);
    const want = reference.get(key);
    expect(index.typeOf(k, 0, k.length)).toBe(want === undefined ? T_NIL : typeof want === "number" ? T_NUMBER : T_STRING);
  }
}

describe("object index", () => {
  test("random puts, removals and compactions answer as a Map of the same changes", () => {
    const random = rng(7);
    const index = new ObjectIndex(new Uint8Array([MAGIC]));
    const reference = new Map<string, string | number>();
    const keys = Array.from({ length: 3000 }, (_, i) => (i % 7 === 0 ? "" : `k${i}\xff:${"x".repeat(i % 40)}`));
    for (let step = 0; step < 40_000; step++) {
      const key = keys[Math.floor(random() * keys.length)];
      const k = latin1Bytes(key);
      const roll = random();
      if (roll < 0.4) {
        const value = `v${step}`.repeat(1 + (step % 5));
        const v = latin1Bytes(value);
        index.appendString(k, 0, k.length, v, 0, v.length);
        reference.set(key, value);
      } else if (roll < 0.7) {
        index.appendNumber(k, 0, k.length, step / 4);
        reference.set(key, step / 4);
      } else {
        index.appendNil(k, 0, k.length);
        reference.delete(key);
      }
      if (index.records - index.count > index.count + 8) index.compact();
      if (step % 5000 === 0) expectSame(index, reference, keys.slice(0, 200));
    }
    expectSame(index, reference, keys);
    const compacted = index.compact().slice(0, index.length);
    expect(index.records).toBe(reference.size);
    expectSame(new ObjectIndex(compacted), reference, keys);
    // Most keys removed: the compaction that follows shrinks the log and the index, and the rest still answer.
    for (const key of keys.slice(10)) {
      const k = latin1Bytes(key);
      index.appendNil(k, 0, k.length);
      reference.delete(key);
    }
    const bigLog = index.log.length;
    index.compact();
    expect(index.log.length).toBeLessThan(bigLog);
    expectSame(index, reference, keys);
  });

  test("a tail another writer appended is taken as if appended here", () => {
    const writer = new ObjectIndex(new Uint8Array([MAGIC]));
    const k = latin1Bytes("member");
    writer.appendNumber(k, 0, k.length, 1);
    const reader = new ObjectIndex(writer.log.slice(0, writer.length));
    const before = writer.length;
    writer.appendNil(k, 0, k.length);
    const other = latin1Bytes("other");
    writer.appendString(other, 0, other.length, k, 0, k.length);
    reader.extend(writer.log.slice(before, writer.length));
    expect(contents(reader)).toEqual(new Map([["other", "member"]]));
    expect(reader.records).toBe(3);
  });

  test("a log that is not flat string-keyed pairs is refused, not misread", () => {
    expect(() => new ObjectIndex(new Uint8Array([0x00]))).toThrow(NotFlat);
    // A number key, a nested table, a pair cut short.
    expect(() => new ObjectIndex(new Uint8Array([MAGIC, T_NUMBER, 0, 0, 0, 0, 0, 0, 0, 0, T_NIL]))).toThrow(NotFlat);
    expect(() => new ObjectIndex(new Uint8Array([MAGIC, T_STRING, 1, 0, 0, 0, 97, 5]))).toThrow(NotFlat);
    expect(() => new ObjectIndex(new Uint8Array([MAGIC, T_STRING, 1, 0, 0, 0, 97, T_STRING, 9, 0, 0, 0, 98]))).toThrow(NotFlat);
  });
});
