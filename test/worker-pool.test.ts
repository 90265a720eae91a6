/**
 * A worker thread that ends while the pool is serving is reported as a crash (main.ts then logs it
 * and exits 1, so that systemd restarts the whole server rather than leaving a half-served port).
 */
import { expect, test } from "bun:test";
import { defaultConfig, withOptions } from "../src/config.ts";
import { WorkerPool } from "../src/worker-pool.ts";

test("a worker thread that dies while serving is reported as crashed, naming the thread", async () => {
  const crashes: [number, string][] = [];
  const pool = new WorkerPool(withOptions(defaultConfig(), { port: 0, listen: "127.0.0.1", memoryLimitMb: 8 }), 2, {
    log: () => {},
    shutdown: () => {},
    crashed: (thread, reason) => crashes.push([thread, reason]),
  });
  await pool.start(false);
  try {
    // What an uncaught fault would do to the thread: it ends without being asked to.
    workersOf(pool)[1].terminate();
    for (let i = 0; i < 100 && crashes.length === 0; i++) await Bun.sleep(20);
    expect(crashes).toEqual([[1, "the thread exited"]]);
  } finally {
    // drain() would wait for the dead thread's answer: end the rest as main.ts's exit would.
    for (const w of workersOf(pool)) w.terminate();
  }
});

const workersOf = (pool: WorkerPool): Worker[] => (pool as unknown as { workers: Worker[] }).workers;
