/**
 * The data-integrity soak (bench/soak.ts) at test size, and the judge it relies on: a soak that
 * could not see a lost write or a damaged byte would prove nothing.
 */
import { describe, expect, test } from "bun:test";
import type { Item } from "../bench/robustness/client.ts";
import { encodeRecord } from "../bench/robustness/record.ts";
import { judgeForeignRead, judgeOwnRead, type KeyState, newKeyState, newTally, type Tally } from "../bench/robustness/soak-model.ts";
import { DEFAULT_OPTIONS, formatReport, runSoak, type SoakReport } from "../bench/soak.ts";

const KEY = "soak:0:r1";

function item(value: Uint8Array, flags = 9): Item {
  return { key: KEY, flags, value, cas: undefined };
}

/** A key whose last acknowledged write is version 3 (value = records 2 and 3, as after an append). */
function written(): KeyState {
  const state: KeyState = newKeyState(KEY);
  state.version = 3;
  state.value = Buffer.concat([encodeRecord(KEY, 2, 40), encodeRecord(KEY, 3, 10)]);
  state.flags = 9;
  return state;
}

describe("the soak's judge", () => {
  test("the value last written reads back clean", () => {
    const tally: Tally = newTally();
    const state: KeyState = written();
    judgeOwnRead(state, item(state.value!), tally);
    expect(tally).toMatchObject({ hits: 1, corrupt: 0, lostWrites: 0 });
  });

  test("an older version than the last acknowledged write is a lost write; a miss is not", () => {
    const tally: Tally = newTally();
    judgeOwnRead(written(), item(encodeRecord(KEY, 2, 40)), tally);
    judgeOwnRead(written(), undefined, tally);
    judgeForeignRead(KEY, 3, item(encodeRecord(KEY, 2, 40)), tally);
    judgeForeignRead(KEY, 3, undefined, tally);
    expect(tally).toMatchObject({ reads: 4, misses: 1, lostWrites: 2, corrupt: 0 });
  });

  test("a value after an acknowledged delete is a lost write", () => {
    const tally: Tally = newTally();
    const state: KeyState = written();
    const old: Uint8Array = state.value!;
    state.version = 4; // the delete
    state.value = undefined;
    judgeOwnRead(state, item(old), tally);
    expect(tally.lostWrites).toBe(1);
  });

  test("one damaged byte, a wrong key, wrong flags or a cut value are corruption", () => {
    const tally: Tally = newTally();
    const damaged: Uint8Array = written().value!.slice();
    damaged[30] ^= 1;
    judgeOwnRead(written(), item(damaged), tally);
    judgeOwnRead(written(), item(Buffer.concat([encodeRecord("soak:0:r2", 2, 40), encodeRecord("soak:0:r2", 3, 10)])), tally);
    judgeOwnRead(written(), item(written().value!, 8), tally);
    judgeOwnRead(written(), item(written().value!.subarray(0, 60)), tally);
    expect(tally).toMatchObject({ corrupt: 4, lostWrites: 0 });
  });
});

test("a 10 s soak under eviction pressure returns no corrupt value and loses no acknowledged write", async () => {
  const report: SoakReport = await runSoak({ ...DEFAULT_OPTIONS, seconds: 10 });
  console.log(formatReport(report));
  expect(report.fatal).toBeUndefined();
  expect(report.serverAlive).toBe(true);
  expect(report.tally.corrupt).toBe(0);
  expect(report.tally.lostWrites).toBe(0);
  expect(report.tally.unexpected).toBe(0);
  expect(report.evictions).toBeGreaterThan(0); // the pressure was real
  expect(report.ops).toBeGreaterThan(10_000);
}, 30_000);
