/** src/log.ts: one line per event, logfmt or JSON, -v levels, colour only when asked for. */
import { describe, expect, test } from "bun:test";
import { type LogFormat, Logger, logfmtValue } from "../src/log.ts";

const AT = new Date("2025-01-02T03:04:05.678Z");

function capture(format: LogFormat, verbose: number, colour = false): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const log = new Logger({ format, verbose, colour, write: (line) => lines.push(line), now: () => AT });
  return { log, lines };
}

describe("logger", () => {
  test("logfmt: time, level, msg, then the fields, one newline-terminated line", () => {
    const { log, lines } = capture("logfmt", 1);
    log.info("listening", { addr: "127.0.0.1:11211", memory_mb: 64, tls: false });
    expect(lines).toEqual(["time=2025-01-02T03:04:05.678Z level=info msg=listening addr=127.0.0.1:11211 memory_mb=64 tls=false\n"]);
  });

  test("logfmt quotes values with spaces, quotes, equals signs, control characters or nothing", () => {
    expect(logfmtValue("plain")).toBe("plain");
    expect(logfmtValue("two words")).toBe('"two words"');
    expect(logfmtValue('say "hi"')).toBe('"say \\"hi\\""');
    expect(logfmtValue("a=b")).toBe('"a=b"');
    expect(logfmtValue("line\nbreak")).toBe('"line\\nbreak"');
    expect(logfmtValue("")).toBe('""');
    const { log, lines } = capture("logfmt", 0);
    log.error("cannot listen", { error: "address in use" });
    expect(lines[0]).toBe('time=2025-01-02T03:04:05.678Z level=error msg="cannot listen" error="address in use"\n');
  });

  test("json: one object per line with time, level, msg and the fields", () => {
    const { log, lines } = capture("json", 1);
    log.warn("config change needs a restart", { option: "memory-limit", running: 64, file: 128 });
    expect(lines).toHaveLength(1);
    expect(lines[0].endsWith("\n")).toBe(true);
    expect(lines[0].indexOf("\n")).toBe(lines[0].length - 1);
    expect(JSON.parse(lines[0])).toEqual({ time: "2025-01-02T03:04:05.678Z", level: "warn", msg: "config change needs a restart", option: "memory-limit", running: 64, file: 128 });
  });

  test("-v picks the levels: 0 warnings and errors, 1 adds info, 2 adds debug", () => {
    const written = (verbose: number): string[] => {
      const { log, lines } = capture("json", verbose);
      log.debug("d");
      log.info("i");
      log.warn("w");
      log.error("e");
      return lines.map((l) => (JSON.parse(l) as { level: string }).level);
    };
    expect(written(0)).toEqual(["warn", "error"]);
    expect(written(1)).toEqual(["info", "warn", "error"]);
    expect(written(2)).toEqual(["debug", "info", "warn", "error"]);
  });

  test("colour codes appear only when colour is on, and never in JSON", () => {
    const plain = capture("logfmt", 1, false);
    plain.log.info("x");
    expect(plain.lines[0]).not.toContain("\x1b[");
    const coloured = capture("logfmt", 1, true);
    coloured.log.info("x");
    expect(coloured.lines[0]).toContain("level=\x1b[36minfo\x1b[0m");
    const json = capture("json", 1, true);
    json.log.info("x");
    expect(json.lines[0]).not.toContain("\x1b[");
  });

  test("configure switches format and verbosity of a running logger (SIGHUP)", () => {
    const { log, lines } = capture("logfmt", 0);
    log.info("hidden");
    log.configure("json", 1);
    log.info("shown");
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]).msg).toBe("shown");
  });
});
