// The runtime's floor: a Bun server that frames memcached text requests and answers without a
// store (every get a miss, every set STORED), on the same Bun.listen/Worker/reusePort setup as
// cacheismo. What it costs per request is what any Bun server pays before doing any work; the
// throughput bench (--floor) runs it beside memcached and cacheismo so that the gap between
// cacheismo and memcached can be split into "Bun's" and "ours".
//
//   bun bench/lib/floor-server.ts -p <port> [-t <threads>]
import { parseArgs } from "node:util";
import { isMainThread, Worker, workerData } from "node:worker_threads";
import type { Socket } from "bun";

const END = Buffer.from("END\r\n");
const STORED = Buffer.from("STORED\r\n");
const VERSION = Buffer.from("VERSION floor\r\n");
const ERROR = Buffer.from("ERROR\r\n");
const MAX_LINE = 2048;

interface Connection {
  /** Replies waiting to be written at the end of this event-loop turn. */
  queued: number;
  /** Bytes of a storage command's data block (with its CRLF) still to skip. */
  skip: number;
  /** An incomplete request line carried over to the next chunk. */
  line: Buffer;
  lineLength: number;
  out: Buffer;
}

function reply(conn: Connection, at: number, what: Buffer): number {
  if (at + what.length > conn.out.length) {
    const grown = Buffer.allocUnsafe(Math.max(conn.out.length * 2, at + what.length));
    conn.out.copy(grown, 0, 0, at);
    conn.out = grown;
  }
  what.copy(conn.out, at);
  return at + what.length;
}

/** Answers one complete request line; returns the new end of the output. */
function answer(conn: Connection, line: Buffer, start: number, end: number, at: number): number {
  const c = line[start];
  if (c === 0x67 /* g */) return reply(conn, at, END);
  if (c === 0x73 /* s */) {
    if (line[start + 1] === 0x74 /* st(ats) */) return reply(conn, at, END);
    // "set <key> <flags> <exptime> <bytes>": the data block follows.
    let sp = end;
    while (sp > start && line[sp - 1] !== 0x20) sp--;
    let bytes = 0;
    for (let i = sp; i < end; i++) bytes = bytes * 10 + (line[i] - 48);
    conn.skip = bytes + 2;
    return reply(conn, at, STORED);
  }
  if (c === 0x76 /* v */) return reply(conn, at, VERSION);
  return reply(conn, at, ERROR);
}

/** Answers the complete requests in chunk, appending replies to conn.out from `at`; returns the new end. */
function feed(conn: Connection, chunk: Buffer, at: number): number {
  let pos = 0;
  while (pos < chunk.length) {
    if (conn.skip > 0) {
      const n = Math.min(conn.skip, chunk.length - pos);
      conn.skip -= n;
      pos += n;
      continue;
    }
    const nl = chunk.indexOf(10, pos);
    if (nl < 0) {
      const n = Math.min(chunk.length - pos, MAX_LINE - conn.lineLength);
      chunk.copy(conn.line, conn.lineLength, pos, pos + n);
      conn.lineLength += n;
      break;
    }
    if (conn.lineLength > 0) {
      const n = Math.min(nl - pos, MAX_LINE - conn.lineLength);
      chunk.copy(conn.line, conn.lineLength, pos, pos + n);
      at = answer(conn, conn.line, 0, conn.lineLength + n - 1, at);
      conn.lineLength = 0;
    } else at = answer(conn, chunk, pos, nl - 1, at);
    pos = nl + 1;
  }
  return at;
}

// As cacheismo (src/server.ts flushSoon): the replies of one event-loop turn go out after all of
// its data events are read, which is faster than writing in each data event.
const toFlush: Socket<Connection>[] = [];
function flushQueued(): void {
  for (const socket of toFlush) {
    const conn = socket.data;
    socket.write(conn.out, 0, conn.queued);
    conn.queued = 0;
  }
  toFlush.length = 0;
}

function serve(port: number): void {
  Bun.listen<Connection>({
    hostname: "127.0.0.1",
    port,
    reusePort: true,
    socket: {
      open(socket) {
        socket.data = { queued: 0, skip: 0, line: Buffer.allocUnsafe(MAX_LINE), lineLength: 0, out: Buffer.allocUnsafe(4096) };
        socket.setNoDelay(true);
      },
      data(socket, chunk) {
        const conn = socket.data;
        const n = feed(conn, chunk, conn.queued);
        if (n === conn.queued) return;
        if (conn.queued === 0 && toFlush.push(socket) === 1) setImmediate(flushQueued);
        conn.queued = n;
      },
    },
  });
}

if (isMainThread) {
  const { values } = parseArgs({ args: Bun.argv.slice(2), options: { port: { type: "string", short: "p" }, threads: { type: "string", short: "t", default: "1" } } });
  const port = Number(values.port);
  const threads = Number(values.threads);
  if (threads === 1) serve(port);
  else for (let i = 0; i < threads; i++) new Worker(new URL(import.meta.url), { workerData: port });
} else serve(workerData as number);
