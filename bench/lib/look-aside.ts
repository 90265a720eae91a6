// A look-aside client for a fixed time: multigets of Zipf-popular keys, each miss set right after
// (as an application fills its cache from the database). Used to compare the hit ratio of a
// warm-restarted cache with a cold one under the same load.
import { Prng } from "../hitrate/prng.ts";
import { Zipf } from "../hitrate/zipf.ts";

export interface LookAsideLoad {
  /** Keys are `la:<rank>`; rank 0 is the most popular. */
  readonly keys: number;
  readonly alpha: number;
  readonly valueBytes: number;
  readonly keysPerGet: number;
  readonly seed: number;
}

export interface LookAsideResult {
  gets: number;
  hits: number;
}

const END = Buffer.from("END\r\n");

/** One connection driving 127.0.0.1:port for `seconds`; the same seed gives the same key sequence. */
export async function runLookAside(port: number, load: LookAsideLoad, seconds: number, zipf = new Zipf(load.keys, load.alpha)): Promise<LookAsideResult> {
  const prng = new Prng(load.seed);
  const value = "v".repeat(load.valueBytes);
  const chunks: Buffer[] = [];
  let wake: (() => void) | null = null;
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data(_s, chunk) {
        chunks.push(Buffer.from(chunk));
        wake?.();
      },
    },
  });
  const result: LookAsideResult = { gets: 0, hits: 0 };
  const deadline = Date.now() + seconds * 1000;
  try {
    while (Date.now() < deadline) {
      const ranks = Array.from({ length: load.keysPerGet }, () => zipf.sample(prng));
      socket.write(`get ${ranks.map((r) => `la:${r}`).join(" ")}\r\n`);
      const reply = await readReply(chunks, (w) => (wake = w));
      const hit = hitKeys(reply);
      result.gets += ranks.length;
      result.hits += ranks.filter((r) => hit.has(`la:${r}`)).length;
      let fills = "";
      for (const r of new Set(ranks)) if (!hit.has(`la:${r}`)) fills += `set la:${r} 0 0 ${load.valueBytes} noreply\r\n${value}\r\n`;
      if (fills !== "") socket.write(fills);
    }
  } finally {
    socket.end();
  }
  return result;
}

/** Waits until the received bytes end with END\r\n; returns them all. */
async function readReply(chunks: Buffer[], onData: (wake: () => void) => void): Promise<Buffer> {
  for (;;) {
    const last = chunks.at(-1);
    if (last !== undefined) {
      const all = chunks.length === 1 ? last : Buffer.concat(chunks);
      if (all.length >= END.length && all.subarray(all.length - END.length).equals(END)) {
        chunks.length = 0;
        return all;
      }
      chunks.length = 0;
      chunks.push(all);
    }
    await new Promise<void>((resolve) => onData(resolve));
  }
}

/** The keys of the VALUE blocks in a retrieval reply, skipping their data by length. */
function hitKeys(reply: Buffer): Set<string> {
  const keys = new Set<string>();
  let pos = 0;
  while (reply.subarray(pos, pos + 6).toString("latin1") === "VALUE ") {
    const eol = reply.indexOf("\r\n", pos);
    const [, key, , bytes] = reply.subarray(pos, eol).toString("latin1").split(" ");
    keys.add(key);
    pos = eol + 2 + Number(bytes) + 2;
  }
  return keys;
}
