/** The protocol fuzzer (bench/fuzz.ts) at test size, and the reply checker it relies on. */
import { describe, expect, test } from "bun:test";
import { DEFAULT_OPTIONS, type FuzzReport, formatReport, runFuzz } from "../bench/fuzz.ts";
import { ascii } from "../bench/robustness/bytes.ts";
import { ReplyChecker } from "../bench/robustness/reply-check.ts";

function check(stream: string, splitAt: number): ReplyChecker {
  const checker = new ReplyChecker();
  checker.push(ascii(stream.slice(0, splitAt)));
  checker.push(ascii(stream.slice(splitAt)));
  return checker;
}

describe("the fuzzer's reply checker", () => {
  const GOOD = "STORED\r\nVALUE k 5 4 77\r\na\r\nb\r\nEND\r\n42\r\nCLIENT_ERROR bad data chunk\r\nSTAT pid 1\r\nVERSION 1.6.21\r\n";

  test("accepts a well-formed reply stream however it is split", () => {
    for (let at = 0; at <= GOOD.length; at++) {
      const checker: ReplyChecker = check(GOOD, at);
      expect(checker.malformed).toBeUndefined();
      expect(checker.counts).toMatchObject({ simple: 2, value: 1, number: 1, client_error: 1, stat: 1, version: 1 });
    }
  });

  test("flags a data block longer than its VALUE line says, and an unknown line", () => {
    expect(check("VALUE k 0 1\r\nab\r\nEND\r\n", 5).malformed).toBeDefined();
    expect(check("STORED\r\nSTORD\r\n", 3).malformed).toBe(JSON.stringify("STORD"));
  });
});

test("40,000 random and mutated requests, flush_all of a populated cache among them, are all answered in time, leave the server up, every reply well-formed and the control key intact", async () => {
  const report: FuzzReport = await runFuzz({ ...DEFAULT_OPTIONS, requests: 40_000, seconds: 25, seed: 42 });
  console.log(formatReport(report));
  expect(report.unanswered).toEqual([]);
  expect(report.serverAlive).toBe(true);
  expect(report.malformed).toEqual([]);
  expect(report.controlFailures).toEqual([]);
  expect(report.answersAfterRun).toBe(true);
  expect(report.requests).toBe(40_000);
  expect(report.mutated).toBeGreaterThan(2000);
  expect(report.batches.synced).toBeGreaterThan(200);
  expect(report.controlChecks).toBeGreaterThan(report.batches.synced);
  expect(report.flushes.sent.immediate).toBeGreaterThanOrEqual(3);
  expect(report.flushes.sent.delayed).toBeGreaterThanOrEqual(2);
  expect(report.flushes.sent.noreply).toBeGreaterThanOrEqual(1);
  expect(Math.max(...report.flushes.itemsBefore)).toBeGreaterThan(100);
}, 45_000);
