/**
 * The data-integrity soak (bench/soak.ts) at test size, and the judge it relies on: a soak that
 * could not see a lost write, a damaged byte or a value outliving a flush_all would prove nothing.
 */
import { describe, expect, test } from "bun:test";
import type { Item } from "../bench/robustness/client.ts";
import { FLUSH_FORMS, type FlushForm, FlushLog } from "../bench/robustness/flush-log.ts";
import { defaultServerTemplate } from "../bench/robustness/process.ts";
import { encodeRecord } from "../bench/robustness/record.ts";
import { judgeForeignRead, judgeOwnRead, type KeyState, newKeyState, newTally, type Tally, type Timing } from "../bench/robustness/soak-model.ts";
import { DEFAULT_OPTIONS, formatReport, runSoak, type SoakReport } from "../bench/soak.ts";

const KEY = "soak:0:r1";
/** Times in ms: the value was last written or seen at 1000 (see written()), reads go out at 10,000. */
const READ: Timing = { sentAt: 10_000, answeredAt: 10_001 };
const NO_FLUSH = new FlushLog();
const form = (line: string): FlushForm => FLUSH_FORMS.find((f) => f.line === line)!;

function item(value: Uint8Array, flags = 9): Item {
  return { key: KEY, flags, value, cas: undefined };
}

/** A key whose last acknowledged write is version 3 (value = records 2 and 3, as after an append). */
function written(): KeyState {
  const state: KeyState = newKeyState(KEY);
  state.version = 3;
  state.value = Buffer.concat([encodeRecord(KEY, 2, 40), encodeRecord(KEY, 3, 10)]);
  state.flags = 9;
  state.seenAt = 1000;
  return state;
}

/** A flush sent at `sentAt` and answered 100 ms later. */
function flushed(line: string, sentAt: number): FlushLog {
  const log = new FlushLog();
  log.answered(log.begin(form(line), sentAt, "test"), sentAt + 100);
  return log;
}

describe("the soak's judge", () => {
  test("the value last written reads back clean", () => {
    const tally: Tally = newTally();
    const state: KeyState = written();
    judgeOwnRead(state, item(state.value!), tally, NO_FLUSH, READ);
    expect(tally).toMatchObject({ hits: 1, corrupt: 0, lostWrites: 0 });
  });

  test("an older version than the last acknowledged write is a lost write; a miss is not", () => {
    const tally: Tally = newTally();
    judgeOwnRead(written(), item(encodeRecord(KEY, 2, 40)), tally, NO_FLUSH, READ);
    judgeOwnRead(written(), undefined, tally, NO_FLUSH, READ);
    judgeForeignRead(KEY, { version: 3, seenAt: 1000 }, item(encodeRecord(KEY, 2, 40)), tally, NO_FLUSH, READ);
    judgeForeignRead(KEY, { version: 3, seenAt: 1000 }, undefined, tally, NO_FLUSH, READ);
    expect(tally).toMatchObject({ reads: 4, misses: 1, lostWrites: 2, corrupt: 0 });
  });

  test("a value after an acknowledged delete is a lost write", () => {
    const tally: Tally = newTally();
    const state: KeyState = written();
    const old: Uint8Array = state.value!;
    state.version = 4; // the delete
    state.value = undefined;
    judgeOwnRead(state, item(old), tally, NO_FLUSH, READ);
    expect(tally.lostWrites).toBe(1);
  });

  test("one damaged byte, a wrong key, wrong flags or a cut value are corruption", () => {
    const tally: Tally = newTally();
    const damaged: Uint8Array = written().value!.slice();
    damaged[30] ^= 1;
    judgeOwnRead(written(), item(damaged), tally, NO_FLUSH, READ);
    judgeOwnRead(written(), item(Buffer.concat([encodeRecord("soak:0:r2", 2, 40), encodeRecord("soak:0:r2", 3, 10)])), tally, NO_FLUSH, READ);
    judgeOwnRead(written(), item(written().value!, 8), tally, NO_FLUSH, READ);
    judgeOwnRead(written(), item(written().value!.subarray(0, 60)), tally, NO_FLUSH, READ);
    expect(tally).toMatchObject({ corrupt: 4, lostWrites: 0 });
  });

  test("after a flush_all the key is missing or holds a newer write; the value from before is a survivor", () => {
    for (const line of ["flush_all", "flush_all 0 noreply"]) {
      const tally: Tally = newTally();
      judgeOwnRead(written(), undefined, tally, flushed(line, 5000), READ);
      const rewritten: KeyState = written();
      rewritten.seenAt = 6000; // written again after the flush
      judgeOwnRead(rewritten, item(rewritten.value!), tally, flushed(line, 5000), READ);
      expect(tally).toMatchObject({ misses: 1, survivedFlush: 0 });
      judgeOwnRead(written(), item(written().value!), tally, flushed(line, 5000), READ);
      judgeForeignRead(KEY, { version: 3, seenAt: 1000 }, item(written().value!), tally, flushed(line, 5000), READ);
      expect(tally).toMatchObject({ survivedFlush: 2, corrupt: 0, lostWrites: 0 });
    }
  });

  test("a flush not yet answered, or a delayed one not yet due, may not have acted", () => {
    const tally: Tally = newTally();
    const inFlight = new FlushLog();
    inFlight.begin(form("flush_all"), 5000, "test");
    judgeOwnRead(written(), item(written().value!), tally, inFlight, READ);
    // flush_all 2 sent at 7000 acts about 9000, give or take memcached's whole seconds
    judgeOwnRead(written(), item(written().value!), tally, flushed("flush_all 2", 7000), READ);
    expect(tally.survivedFlush).toBe(0);
    judgeOwnRead(written(), item(written().value!), tally, flushed("flush_all 2", 7000), { sentAt: 12_000, answeredAt: 12_001 });
    expect(tally.survivedFlush).toBe(1);
  });
});

test("a 10 s soak of two server threads under eviction pressure and flush_all answers every request, returns no corrupt value, loses no acknowledged write, and no value outlives a flush", async () => {
  const report: SoakReport = await runSoak({ ...DEFAULT_OPTIONS, seconds: 10, server: `${defaultServerTemplate()} -t 2` });
  console.log(formatReport(report));
  expect(report.fatal).toEqual([]);
  expect(report.serverAlive).toBe(true);
  expect(report.tally.corrupt).toBe(0);
  expect(report.tally.lostWrites).toBe(0);
  expect(report.tally.unexpected).toBe(0);
  expect(report.tally.survivedFlush).toBe(0);
  expect(report.evictions).toBeGreaterThan(0); // the pressure was real
  expect(report.ops).toBeGreaterThan(10_000);
  // Flushes of each kind, of a populated cache.
  expect(report.flushes.sent.immediate).toBeGreaterThanOrEqual(2);
  expect(report.flushes.sent.delayed).toBeGreaterThanOrEqual(1);
  expect(report.flushes.sent.noreply).toBeGreaterThanOrEqual(1);
  expect(Math.max(...report.flushes.itemsBefore)).toBeGreaterThan(100);
}, 40_000);
