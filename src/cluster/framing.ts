/**
 * Framing of the memcached text protocol (classic and meta commands), enough
 * to pipeline requests to a peer: how many replies a request will produce,
 * and where each reply ends in the byte stream.
 *
 * Reply shapes recognised:
 *  - VALUE <key> <flags> <bytes> [<cas>] + data blocks, then END (get/gets/gat/gats)
 *  - STAT ... / ITEM ... lines, then END (stats, stats items/slabs/cachedump)
 *  - VA <size> <flags>* + one data block (meta get hit)
 *  - any other single line: STORED, NOT_FOUND, a number, VERSION x, OK, HD, EN,
 *    MN, ERROR, CLIENT_ERROR x, SERVER_ERROR x, ...
 * An error line also ends a multi-line reply, as memcached stops there.
 */
import { latin1String } from "../latin1.ts";

const CR = 13;
const LF = 10;

export class ProtocolError extends Error {
  override name = "ProtocolError";
}

const STORAGE_COMMANDS = new Set(["set", "add", "replace", "append", "prepend", "cas"]);
const MULTI_LINE_PREFIXES = ["VALUE ", "STAT ", "ITEM "];
const ERROR_PREFIXES = ["ERROR", "CLIENT_ERROR", "SERVER_ERROR"];

function indexOfCrlf(buf: Uint8Array, from: number, to: number): number {
  for (let i = buf.indexOf(LF, from); i !== -1 && i < to; i = buf.indexOf(LF, i + 1)) {
    if (i > from && buf[i - 1] === CR) return i - 1;
  }
  return -1;
}

function dataLength(token: string | undefined, line: string): number {
  if (token === undefined || !/^\d+$/.test(token)) throw new ProtocolError(`bad data length in "${line}"`);
  return Number(token);
}

const RETRIEVAL_COMMANDS = new Set(["get", "gets", "gat", "gats"]);

/** `noreply` as an option rather than as a key (e.g. "delete noreply" deletes the key "noreply"). */
function hasTrailingNoreply(cmd: string, tokens: string[]): boolean {
  if (tokens[tokens.length - 1] !== "noreply" || RETRIEVAL_COMMANDS.has(cmd) || cmd[0] === "m") return false;
  return tokens.length > 2 || cmd === "flush_all";
}

/**
 * Number of replies memcached will send for `request`, which must hold whole
 * commands (data blocks included). Throws ProtocolError for commands that
 * would leave the reply stream ambiguous: `noreply` and meta quiet mode (`q`),
 * which may or may not answer, and truncated requests.
 */
export function countReplies(request: Uint8Array): number {
  let count = 0;
  let pos = 0;
  while (pos < request.length) {
    const eol = indexOfCrlf(request, pos, request.length);
    if (eol === -1) throw new ProtocolError("request does not end with \\r\\n");
    const line = latin1String(request, pos, eol);
    const tokens = line.split(" ").filter((t) => t !== "");
    const cmd = tokens[0] ?? "";
    pos = eol + 2;
    if (STORAGE_COMMANDS.has(cmd)) {
      if (tokens[cmd === "cas" ? 6 : 5] === "noreply") throw new ProtocolError(`noreply is not supported: "${line}"`);
      pos += dataLength(tokens[4], line) + 2;
    } else if (hasTrailingNoreply(cmd, tokens)) {
      throw new ProtocolError(`noreply is not supported: "${line}"`);
    } else if (cmd.length === 2 && cmd[0] === "m") {
      if (tokens.slice(cmd === "mn" ? 1 : 2).some((t) => t[0] === "q")) {
        throw new ProtocolError(`meta quiet mode is not supported: "${line}"`);
      }
      if (cmd === "ms") pos += dataLength(tokens[2], line) + 2;
    }
    if (pos > request.length) throw new ProtocolError(`request is missing the data block of "${line}"`);
    count++;
  }
  return count;
}

/**
 * Parses replies out of a byte stream. `next(buf, from, to)` returns the end
 * offset of the complete reply starting at `from`, or -1 if more bytes are
 * needed. Progress is kept relative to `from`, so a partial reply is not
 * rescanned even if the caller moves its buffer between calls.
 */
export class ReplyScanner {
  private scanned = 0; // bytes of the current reply already known to be complete lines
  private multiLine = false;

  next(buf: Uint8Array, from: number, to: number): number {
    let pos = from + this.scanned;
    for (;;) {
      const eol = indexOfCrlf(buf, pos, to);
      if (eol === -1) break;
      const line = latin1String(buf, pos, Math.min(eol, pos + 64));
      let end = eol + 2;
      if (line.startsWith("VA ") && !this.multiLine) {
        end += dataLength(line.split(" ")[1], line) + 2;
        if (end > to) break;
        return this.done(end);
      }
      if (line.startsWith("VALUE ")) {
        end += dataLength(latin1String(buf, pos, eol).split(" ")[3], line) + 2;
        if (end > to) break;
        this.multiLine = true;
        pos = end;
        continue;
      }
      if (line === "END" || ERROR_PREFIXES.some((p) => line.startsWith(p))) return this.done(end);
      if (MULTI_LINE_PREFIXES.some((p) => line.startsWith(p))) {
        this.multiLine = true;
        pos = end;
        continue;
      }
      if (this.multiLine) throw new ProtocolError(`unexpected line in a multi-line reply: "${line}"`);
      return this.done(end);
    }
    this.scanned = pos - from;
    return -1;
  }

  private done(end: number): number {
    this.scanned = 0;
    this.multiLine = false;
    return end;
  }
}
