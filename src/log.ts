/**
 * One line per event on stderr, as logfmt (`time=… level=info msg=listening addr=…`) or JSON.
 * -v picks the levels: 0 = warnings and errors, 1 = + info, 2 = + debug. The level is coloured
 * only when stderr is a terminal (and NO_COLOR is unset), so files and journald get plain text.
 */
import { writeSync } from "node:fs";

export type LogFormat = "logfmt" | "json";
export type Level = "error" | "warn" | "info" | "debug";
export type LogFields = Readonly<Record<string, string | number | boolean>>;

/** The -v count from which a level is written. */
const MIN_VERBOSE: Readonly<Record<Level, number>> = { error: 0, warn: 0, info: 1, debug: 2 };
const COLOUR: Readonly<Record<Level, string>> = { error: "\x1b[31m", warn: "\x1b[33m", info: "\x1b[36m", debug: "\x1b[90m" };
const RESET = "\x1b[0m";

export interface LoggerOptions {
  format: LogFormat;
  verbose: number;
  /** Where lines go; the default writes synchronously to fd 2 so nothing is lost at process.exit. */
  write?: (line: string) => void;
  colour?: boolean;
  now?: () => Date;
}

export class Logger {
  private format: LogFormat;
  private verbose: number;
  private readonly write: (line: string) => void;
  private readonly colour: boolean;
  private readonly now: () => Date;

  constructor(options: LoggerOptions) {
    this.format = options.format;
    this.verbose = options.verbose;
    this.write = options.write ?? ((line) => writeSync(2, line));
    this.colour = options.colour ?? (process.stderr.isTTY === true && !process.env.NO_COLOR);
    this.now = options.now ?? (() => new Date());
  }

  /** Changes format and verbosity in place (SIGHUP). */
  configure(format: LogFormat, verbose: number): void {
    this.format = format;
    this.verbose = verbose;
  }

  enabled(level: Level): boolean {
    return this.verbose >= MIN_VERBOSE[level];
  }

  error(msg: string, fields?: LogFields): void {
    this.log("error", msg, fields);
  }

  warn(msg: string, fields?: LogFields): void {
    this.log("warn", msg, fields);
  }

  info(msg: string, fields?: LogFields): void {
    this.log("info", msg, fields);
  }

  debug(msg: string, fields?: LogFields): void {
    this.log("debug", msg, fields);
  }

  log(level: Level, msg: string, fields: LogFields = {}): void {
    if (!this.enabled(level)) return;
    const time = this.now().toISOString();
    this.write(this.format === "json" ? jsonLine(time, level, msg, fields) : logfmtLine(time, level, msg, fields, this.colour) + "\n");
  }
}

function jsonLine(time: string, level: Level, msg: string, fields: LogFields): string {
  return JSON.stringify({ time, level, msg, ...fields }) + "\n";
}

function logfmtLine(time: string, level: Level, msg: string, fields: LogFields, colour: boolean): string {
  const levelText = colour ? `${COLOUR[level]}${level}${RESET}` : level;
  let line = `time=${time} level=${levelText} msg=${logfmtValue(msg)}`;
  for (const [key, value] of Object.entries(fields)) line += ` ${key}=${logfmtValue(String(value))}`;
  return line;
}

/** Quotes a value when it is empty or holds a space, `=`, a quote or a control character. */
export function logfmtValue(value: string): string {
  if (value !== "" && !/[\s="\\\x00-\x1f\x7f]/.test(value)) return value;
  return JSON.stringify(value);
}
