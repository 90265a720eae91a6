// Minimal one-shot memcached text-protocol requests (version, stats) for benches.

/** Sends one command line and resolves with the reply once isComplete(reply) holds. */
export function request(port: number, line: string, isComplete: (reply: string) => boolean, timeoutMs: number): Promise<string> {
  return exchange(port, `${line}\r\n`, isComplete, timeoutMs);
}

/**
 * Sends `text` as it is (any protocol: memcached lines, RESP frames) on a new connection and
 * resolves with the reply once isComplete(reply) holds; rejects after timeoutMs or on a close.
 */
export function exchange(port: number, text: string, isComplete: (reply: string) => boolean, timeoutMs: number): Promise<string> {
  const shown = JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
  return new Promise<string>((resolve, reject) => {
    let reply: string = "";
    let socket: { end(): void } | undefined;
    let settled: boolean = false;
    // Settle once: ending the socket fires close() synchronously, which must not reject a resolved reply.
    const settle = (error: Error | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) reject(error);
      else resolve(reply);
      socket?.end();
    };
    const timer: Timer = setTimeout(
      () => settle(new Error(`no complete reply to ${shown} within ${timeoutMs} ms; got ${JSON.stringify(reply.slice(0, 200))}`)),
      timeoutMs,
    );
    Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        open(s) {
          socket = s;
          s.write(text);
        },
        data(_s, chunk) {
          reply += chunk.toString("latin1");
          if (isComplete(reply)) settle(undefined);
        },
        close() {
          settle(new Error(`connection closed before a complete reply to ${shown}`));
        },
        error(_s, error) {
          settle(error);
        },
      },
    }).catch((error: Error) => settle(error));
  });
}

export async function version(port: number, timeoutMs: number): Promise<string> {
  const reply: string = await request(port, "version", (r) => r.includes("\r\n"), timeoutMs);
  if (!reply.startsWith("VERSION ")) throw new Error(`unexpected reply to version: ${JSON.stringify(reply)}`);
  return reply.slice("VERSION ".length).trim();
}

/** `stats` as name -> value (values kept as strings; callers parse what they need). */
export async function stats(port: number, timeoutMs: number = 2000): Promise<Map<string, string>> {
  const reply: string = await request(port, "stats", (r) => r.endsWith("END\r\n") || r.includes("ERROR"), timeoutMs);
  const result = new Map<string, string>();
  for (const row of reply.split("\r\n")) {
    const [tag, name, value] = row.split(" ");
    if (tag === "STAT" && name !== undefined && value !== undefined) result.set(name, value);
  }
  return result;
}
