/** Connections spread over a -t N server's threads, and its stats read as numbers. */
import { RawClient } from "./raw-client.ts";

export function stat(stats: string, name: string): number {
  const m = new RegExp(`STAT ${name} (\\d+)`).exec(stats);
  if (m === null) throw new Error(`no ${name} in stats`);
  return Number(m[1]);
}

/** Both threads' connection counts, read through `probe`. */
async function perThread(probe: RawClient): Promise<number[]> {
  const stats = await probe.request("stats\r\n", "END\r\n");
  return [stat(stats, "thread0:total_connections"), stat(stats, "thread1:total_connections")];
}

/**
 * `connections` connections of which both threads took some, as their counters show (the port opens
 * when the first thread listens, and the kernel picks a thread per connection).
 */
export async function connectToBothThreads(port: number, connections: number): Promise<RawClient[]> {
  const probe = await RawClient.connect(port);
  const deadline = Date.now() + 10_000;
  try {
    for (;;) {
      const before = await perThread(probe);
      const batch = await Promise.all(Array.from({ length: connections }, () => RawClient.connect(port)));
      const after = await perThread(probe);
      if (after[0] > before[0] && after[1] > before[1]) return batch;
      for (const c of batch) c.close();
      if (Date.now() > deadline) throw new Error(`connections never reached both threads: ${before} -> ${after}`);
      await Bun.sleep(50);
    }
  } finally {
    probe.close();
  }
}
