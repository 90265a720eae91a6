/** Real clients against a real server process: memccapable, pymemcache and npm's memcached. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import Memcached from "memcached";
import { type SpawnedServer, spawnCacheismo } from "./helpers/spawn.ts";

let server: SpawnedServer;
beforeAll(async () => {
  server = await spawnCacheismo(["-m", "32"]);
});
afterAll(async () => {
  await server.kill();
});

describe("real memcached clients", () => {
  test("libmemcached's memccapable passes every ASCII test", async () => {
    const run = Bun.spawn(["memccapable", "-a", "-t", "5", "-h", "127.0.0.1", "-p", String(server.port)], { stdout: "pipe", stderr: "pipe" });
    const timer = setTimeout(() => run.kill(), 30000);
    const out = (await new Response(run.stdout).text()) + (await new Response(run.stderr).text());
    clearTimeout(timer);
    expect(out).toContain("All tests passed");
    expect(out).not.toContain("[FAIL]");
    expect(out.match(/\[pass\]/g)?.length ?? 0).toBeGreaterThanOrEqual(27);
  });

  test("python3-pymemcache round-trips binary values, multiget, cas, incr/decr, touch and expiry", async () => {
    const script = `
import sys, time
from pymemcache.client.base import Client
c = Client(("127.0.0.1", ${server.port}), connect_timeout=5, timeout=5)
blob = bytes(range(256)) * 40
assert c.set("py:blob", blob)
assert c.get("py:blob") == blob
c.set_many({"py:a": b"1", "py:b": b"2"})
assert c.get_many(["py:a", "py:b", "py:none"]) == {"py:a": b"1", "py:b": b"2"}
v, cas = c.gets("py:a")
assert v == b"1"
assert c.cas("py:a", b"x", cas) is True
assert c.cas("py:a", b"y", cas) is False
c.set("py:n", b"41")
assert c.incr("py:n", 1) == 42
assert c.decr("py:n", 50) == 0
assert c.touch("py:a", 100, noreply=False) is True
assert c.touch("py:none", 100, noreply=False) is False
c.set("py:t", b"soon", expire=1)
assert c.get("py:t") == b"soon"
time.sleep(2.1)
assert c.get("py:t") is None
assert c.add("py:a", b"z", noreply=False) is False
assert c.delete("py:a", noreply=False) is True
print("ok")
`;
    const run = Bun.spawn(["/usr/bin/python3", "-c", script], { stdout: "pipe", stderr: "pipe" });
    const [out, err] = [await new Response(run.stdout).text(), await new Response(run.stderr).text()];
    expect(err).toBe("");
    expect(out.trim()).toBe("ok");
  }, 20000);

  test("npm's memcached client round-trips values, multiget, cas, incr/decr, touch and delete", async () => {
    const mc = new Memcached(`127.0.0.1:${server.port}`, { retries: 0, timeout: 3000 });
    const call = <T>(fn: (cb: (err: unknown, result: T) => void) => void): Promise<T> =>
      new Promise((resolve, reject) => fn((err, result) => (err ? reject(err) : resolve(result))));
    try {
      expect(await call<boolean>((cb) => mc.set("js:k", "hello world", 0, cb))).toBe(true);
      expect(await call<string>((cb) => mc.get("js:k", cb))).toBe("hello world");
      await call((cb) => mc.set("js:j", "second", 0, cb));
      expect(await call<Record<string, string>>((cb) => mc.getMulti(["js:k", "js:j", "js:none"], cb))).toEqual({ "js:k": "hello world", "js:j": "second" });
      const gets = await call<{ cas: string; "js:k": string }>((cb) => mc.gets("js:k", cb));
      expect(gets["js:k"]).toBe("hello world");
      expect(await call<boolean>((cb) => mc.cas("js:k", "changed", gets.cas, 0, cb))).toBe(true);
      expect(await call<boolean>((cb) => mc.cas("js:k", "again", gets.cas, 0, cb))).toBe(false);
      await call((cb) => mc.set("js:n", "10", 0, cb));
      expect(await call<number>((cb) => mc.incr("js:n", 5, cb))).toBe(15);
      expect(await call<number>((cb) => mc.decr("js:n", 20, cb))).toBe(0);
      expect(await call<boolean>((cb) => mc.touch("js:k", 100, cb))).toBe(true);
      expect(await call<boolean>((cb) => mc.del("js:k", cb))).toBe(true);
      expect(await call<string | undefined>((cb) => mc.get("js:k", cb))).toBeUndefined();
    } finally {
      mc.end();
    }
  });
});
