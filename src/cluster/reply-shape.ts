/**
 * Where the reply to one forwarded request ends in a peer's byte stream, checked against the
 * request it answers: a retrieval is answered by `VALUE <one of its keys, in order> …` blocks and
 * `END`, a storage command by one of its words, a meta command by one of its codes (`VA` with its
 * data block), and so on; any request may be answered by an error line. Anything else is a
 * ProtocolError: the peer connection can no longer be trusted.
 *
 * A quiet meta request (`q`) may have no reply at all, so it is forwarded followed by `mn`: its
 * reply is whatever comes before the owner's `MN` (possibly nothing), and `MN` ends it.
 */

/** A peer's bytes that are not a reply to what it was asked: its connection cannot be trusted. */
export class ProtocolError extends Error {
  override name = "ProtocolError";
}

export const enum ReplyKind {
  Retrieval,
  Storage,
  Delete,
  Delta,
  Touch,
  Version,
  // The meta kinds come after the classic ones and the quiet ones last: scanReply and isQuiet
  // tell them apart by rank.
  MetaGet,
  MetaSet,
  MetaDelete,
  MetaArithmetic,
  MetaDebug,
  /** The same meta requests sent with `q`, each followed by `mn`. */
  QuietMetaGet,
  QuietMetaSet,
  QuietMetaDelete,
  QuietMetaArithmetic,
}

/** The kind of a meta request of `kind` sent with `q` (and `mn` after it). */
export function quietKind(kind: ReplyKind): ReplyKind {
  switch (kind) {
    case ReplyKind.MetaGet:
      return ReplyKind.QuietMetaGet;
    case ReplyKind.MetaSet:
      return ReplyKind.QuietMetaSet;
    case ReplyKind.MetaDelete:
      return ReplyKind.QuietMetaDelete;
    case ReplyKind.MetaArithmetic:
      return ReplyKind.QuietMetaArithmetic;
    default:
      throw new Error(`no quiet form of reply kind ${kind}`);
  }
}

export function isQuiet(kind: ReplyKind): boolean {
  return kind >= ReplyKind.QuietMetaGet;
}

/** The `mn` sent after a quiet request, and the `MN\r\n` that ends its reply. */
export const MN_REQUEST = Uint8Array.of(109, 110, 13, 10);
const MN_LINE_BYTES = 4;

/** Where the reply a client gets ends, for a reply that ends at `end`: without a quiet request's MN. */
export function replyBodyEnd(kind: ReplyKind, end: number): number {
  return isQuiet(kind) ? end - MN_LINE_BYTES : end;
}

/** A reply line (without its data block) longer than this is not a reply. */
const MAX_REPLY_LINE_BYTES = 8192;

const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));
const END = ascii("END");
const VALUE = ascii("VALUE ");
const STORED = ascii("STORED");
const NOT_STORED = ascii("NOT_STORED");
const EXISTS = ascii("EXISTS");
const NOT_FOUND = ascii("NOT_FOUND");
const DELETED = ascii("DELETED");
const TOUCHED = ascii("TOUCHED");
const VERSION = ascii("VERSION ");
const ERROR = ascii("ERROR");
const CLIENT_ERROR = ascii("CLIENT_ERROR ");
const SERVER_ERROR = ascii("SERVER_ERROR ");
const MN = ascii("MN");

/** Meta reply codes, as two ASCII letters in one number (c0 << 8 | c1). */
const code = (s: string): number => (s.charCodeAt(0) << 8) | s.charCodeAt(1);
const VA = code("VA");
const HD = code("HD");
const EN = code("EN");
const NF = code("NF");
const NS = code("NS");
const EX = code("EX");
const ME = code("ME");

function lineIs(buf: Uint8Array, from: number, to: number, word: Uint8Array): boolean {
  if (to - from !== word.length) return false;
  return startsWith(buf, from, to, word);
}

function startsWith(buf: Uint8Array, from: number, to: number, word: Uint8Array): boolean {
  if (to - from < word.length) return false;
  for (let i = 0; i < word.length; i++) if (buf[from + i] !== word[i]) return false;
  return true;
}

function isErrorLine(buf: Uint8Array, from: number, to: number): boolean {
  return lineIs(buf, from, to, ERROR) || startsWith(buf, from, to, CLIENT_ERROR) || startsWith(buf, from, to, SERVER_ERROR);
}

function isNumber(buf: Uint8Array, from: number, to: number): boolean {
  if (to === from || to - from > 20) return false;
  for (let i = from; i < to; i++) if (buf[i] < 48 || buf[i] > 57) return false;
  return true;
}

/** The CR of the first CRLF in buf[from, to), or -1. */
function lineEnd(buf: Uint8Array, from: number, to: number): number {
  for (let i = buf.indexOf(10, from); i !== -1 && i < to; i = buf.indexOf(10, i + 1)) {
    if (i > from && buf[i - 1] === 13) return i - 1;
  }
  if (to - from > MAX_REPLY_LINE_BYTES) throw new ProtocolError("reply line too long");
  return -1;
}

/**
 * Scans the reply to a request of `kind` from `from`. `state` carries a retrieval reply's
 * progress between calls (bytes of whole blocks scanned, where the key match is); the caller
 * zeroes it for each new reply. Returns the reply's end, or -1 when more bytes are needed.
 */
export function scanReply(buf: Uint8Array, from: number, to: number, kind: ReplyKind, keys: Uint8Array | null, state: ScanState): number {
  if (kind >= ReplyKind.MetaGet) return isQuiet(kind) ? quietMetaEnd(buf, from, to, kind, state) : metaReplyEnd(buf, from, to, kind);
  if (kind !== ReplyKind.Retrieval) {
    const eol = lineEnd(buf, from, to);
    if (eol < 0) return -1;
    if (!singleLineFits(buf, from, eol, kind)) throw new ProtocolError(`reply does not answer the request: "${preview(buf, from, eol)}"`);
    return eol + 2;
  }
  let pos = from + state.scanned;
  for (;;) {
    const eol = lineEnd(buf, pos, to);
    if (eol < 0) return -1;
    if (lineIs(buf, pos, eol, END)) return eol + 2;
    if (isErrorLine(buf, pos, eol)) return eol + 2;
    if (!startsWith(buf, pos, eol, VALUE)) throw new ProtocolError(`reply does not answer a retrieval: "${preview(buf, pos, eol)}"`);
    const end = valueBlockEnd(buf, pos, eol, keys!, state);
    if (end > to) return -1;
    if (buf[end - 2] !== 13 || buf[end - 1] !== 10) throw new ProtocolError("VALUE data block does not end with \\r\\n");
    state.keyAt = state.nextKeyAt;
    pos = end;
    state.scanned = pos - from;
  }
}

/**
 * A quiet meta request's reply: nothing or one reply, then `MN`. state.scanned is the length of
 * the reply before `MN` once it is framed (a reply is at least 4 bytes, so 0 means not yet).
 */
function quietMetaEnd(buf: Uint8Array, from: number, to: number, kind: ReplyKind, state: ScanState): number {
  let pos = from + state.scanned;
  if (state.scanned === 0) {
    const eol = lineEnd(buf, from, to);
    if (eol < 0) return -1;
    if (lineIs(buf, from, eol, MN)) return eol + 2;
    const end = metaReplyEnd(buf, from, to, kind);
    if (end < 0) return -1;
    state.scanned = end - from;
    pos = end;
  }
  const eol = lineEnd(buf, pos, to);
  if (eol < 0) return -1;
  if (!lineIs(buf, pos, eol, MN)) throw new ProtocolError(`quiet meta reply not followed by MN: "${preview(buf, pos, eol)}"`);
  return eol + 2;
}

/** One meta reply: a code the request may answer (and `VA`'s data block), or an error line. */
function metaReplyEnd(buf: Uint8Array, from: number, to: number, kind: ReplyKind): number {
  const eol = lineEnd(buf, from, to);
  if (eol < 0) return -1;
  if (isErrorLine(buf, from, eol)) return eol + 2;
  const c = eol - from >= 2 && (eol - from === 2 || buf[from + 2] === 32) ? (buf[from] << 8) | buf[from + 1] : 0;
  if (!metaCodeFits(c, kind)) throw new ProtocolError(`reply does not answer a meta request: "${preview(buf, from, eol)}"`);
  if (c !== VA) return eol + 2;
  let i = from + 3;
  const s = i;
  while (i < eol && buf[i] !== 32) i++;
  if (!isNumber(buf, s, i)) throw new ProtocolError(`bad VA line: "${preview(buf, from, eol)}"`);
  let length = 0;
  for (let d = s; d < i; d++) length = length * 10 + (buf[d] - 48);
  const end = eol + 2 + length + 2;
  if (end > to) return -1;
  if (buf[end - 2] !== 13 || buf[end - 1] !== 10) throw new ProtocolError("VA data block does not end with \\r\\n");
  return end;
}

function metaCodeFits(c: number, kind: ReplyKind): boolean {
  switch (kind) {
    case ReplyKind.MetaGet:
    case ReplyKind.QuietMetaGet:
      return c === VA || c === HD || c === EN;
    case ReplyKind.MetaSet:
    case ReplyKind.QuietMetaSet:
      return c === HD || c === NS || c === EX || c === NF;
    case ReplyKind.MetaDelete:
    case ReplyKind.QuietMetaDelete:
      return c === HD || c === NF || c === EX;
    case ReplyKind.MetaArithmetic:
    case ReplyKind.QuietMetaArithmetic:
      return c === HD || c === VA || c === NF || c === NS || c === EX;
    case ReplyKind.MetaDebug:
      return c === ME || c === EN;
    default:
      return false;
  }
}

export interface ScanState {
  scanned: number;
  /** Where in the request's keys the next VALUE key is looked for. */
  keyAt: number;
  nextKeyAt: number;
}

function singleLineFits(buf: Uint8Array, from: number, eol: number, kind: ReplyKind): boolean {
  if (isErrorLine(buf, from, eol)) return true;
  switch (kind) {
    case ReplyKind.Storage:
      return lineIs(buf, from, eol, STORED) || lineIs(buf, from, eol, NOT_STORED) || lineIs(buf, from, eol, EXISTS) || lineIs(buf, from, eol, NOT_FOUND);
    case ReplyKind.Delete:
      return lineIs(buf, from, eol, DELETED) || lineIs(buf, from, eol, NOT_FOUND);
    case ReplyKind.Delta:
      return isNumber(buf, from, eol) || lineIs(buf, from, eol, NOT_FOUND);
    case ReplyKind.Touch:
      return lineIs(buf, from, eol, TOUCHED) || lineIs(buf, from, eol, NOT_FOUND);
    case ReplyKind.Version:
      return startsWith(buf, from, eol, VERSION);
    default:
      return false;
  }
}

/**
 * The end of the VALUE block whose line is buf[pos, eol): `VALUE <key> <flags> <bytes> [<cas>]`,
 * whose key must be one of `keys` (space-separated, as requested) at or after state.keyAt.
 */
function valueBlockEnd(buf: Uint8Array, pos: number, eol: number, keys: Uint8Array, state: ScanState): number {
  const keyStart = pos + VALUE.length;
  let i = keyStart;
  while (i < eol && buf[i] !== 32) i++;
  const keyEnd = i;
  state.nextKeyAt = matchKey(keys, state.keyAt, buf, keyStart, keyEnd);
  if (state.nextKeyAt < 0) throw new ProtocolError(`VALUE for a key not asked for: "${preview(buf, pos, eol)}"`);
  // flags, then the length
  let fields = 0;
  let length = -1;
  while (i < eol && fields < 2) {
    while (i < eol && buf[i] === 32) i++;
    const s = i;
    while (i < eol && buf[i] !== 32) i++;
    if (!isNumber(buf, s, i)) throw new ProtocolError(`bad VALUE line: "${preview(buf, pos, eol)}"`);
    if (++fields === 2) {
      length = 0;
      for (let d = s; d < i; d++) length = length * 10 + (buf[d] - 48);
    }
  }
  if (length < 0) throw new ProtocolError(`bad VALUE line: "${preview(buf, pos, eol)}"`);
  return eol + 2 + length + 2;
}

/** Where after keys[at..] the key k[ks, ke) is (the offset past it), or -1 when it is not there. */
function matchKey(keys: Uint8Array, at: number, k: Uint8Array, ks: number, ke: number): number {
  const len = ke - ks;
  let i = at;
  while (i < keys.length) {
    while (i < keys.length && keys[i] === 32) i++;
    const s = i;
    while (i < keys.length && keys[i] !== 32) i++;
    if (i - s !== len || i === s) continue;
    let same = true;
    for (let j = 0; j < len; j++) {
      if (keys[s + j] !== k[ks + j]) {
        same = false;
        break;
      }
    }
    if (same) return i;
  }
  return -1;
}

function preview(buf: Uint8Array, from: number, to: number): string {
  return String.fromCharCode(...buf.subarray(from, Math.min(to, from + 80)));
}
