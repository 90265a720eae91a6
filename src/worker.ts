/**
 * One thread of a WorkerPool: a CacheServer over the pool's shared memory, listening on the
 * pool's port with reusePort. Logs, the shutdown command and replies go to the main thread.
 */
import { LatencyHistograms } from "./metrics.ts";
import { CacheServer } from "./server.ts";
import type { FromWorker, ToWorker } from "./worker-pool.ts";

declare const self: Worker;

let server: CacheServer | null = null;

function send(msg: FromWorker): void {
  self.postMessage(msg);
}

self.addEventListener("message", async (event: MessageEvent<ToWorker>) => {
  const msg = event.data;
  switch (msg.type) {
    case "start": {
      const latency = msg.latency === null ? null : new LatencyHistograms(undefined, msg.latency);
      try {
        server = new CacheServer(
          msg.config,
          {
            latency,
            log: (level, text) => send({ type: "log", level, msg: text }),
            onShutdown: () => send({ type: "shutdown" }),
          },
          { memory: msg.memory, thread: msg.thread, threads: msg.threads },
        );
      } catch (e) {
        send({ type: "failed", error: (e as Error).message, settings: true });
        return;
      }
      try {
        await server.start();
        send({ type: "listening", port: server.port });
      } catch (e) {
        send({ type: "failed", error: (e as Error).message, settings: false });
      }
      return;
    }
    case "reload": {
      if (server === null) return;
      Object.assign(server.config, msg.config);
      try {
        send({ type: "reloaded", errors: await server.reloadScripts() });
      } catch (e) {
        send({ type: "reloaded", errors: [`script reload failed: ${(e as Error).message}`] });
      }
      return;
    }
    case "drain": {
      await server?.drain(msg.timeoutMs);
      send({ type: "drained" });
      return;
    }
  }
});
