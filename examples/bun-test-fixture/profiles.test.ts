/**
 * How an application tests its caching against a real cacheismo: one server per test, in this
 * process, on a free port, stopped by `await using` when the test ends.
 */
import { expect, test } from "bun:test";
import { startServer } from "cacheismo";
import { type Profile, ProfileService } from "./profiles.ts";

/** A slow lookup that counts how often it is really called. */
function countingLookup(): { lookup: (id: string) => Promise<Profile>; calls: () => number } {
  let calls = 0;
  return {
    lookup: async (id) => {
      calls++;
      await Bun.sleep(20);
      return { id, name: `user ${id}` };
    },
    calls: () => calls,
  };
}

test("a profile looked up twice comes from the slow source once", async () => {
  await using server = await startServer({ port: 0, memoryLimitMb: 16 });
  const source = countingLookup();
  using profiles = new ProfileService(`${server.host}:${server.port}`, source.lookup);

  expect(await profiles.get("42")).toEqual({ id: "42", name: "user 42" });
  expect(await profiles.get("42")).toEqual({ id: "42", name: "user 42" });
  expect(source.calls()).toBe(1);
  const stats = await server.stats();
  expect(stats.get_hits).toBe("1");
  expect(stats.get_misses).toBe("1");
});

test("after the cache is flushed the slow source is asked again", async () => {
  await using server = await startServer({ port: 0, memoryLimitMb: 16 });
  const source = countingLookup();
  using profiles = new ProfileService(`${server.host}:${server.port}`, source.lookup);

  await profiles.get("7");
  await server.flush();
  await profiles.get("7");
  expect(source.calls()).toBe(2);
});
