/**
 * Virtual keys over TCP, through a real memcached client (npm `memcached`) against a real server
 * process with -e: every method of the four bundled objects, user scripts, errors and limits.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Memcached from "memcached";
import { RawClient } from "./helpers/raw-client.ts";
import { type SpawnedServer, spawnCacheismo } from "./helpers/spawn.ts";

let server: SpawnedServer;
let mc: InstanceType<typeof Memcached>;
let raw: RawClient;
const scriptsDir = mkdtempSync(join(tmpdir(), "cacheismo-scripts-"));
writeFileSync(
  join(scriptsDir, "greeter.lua"),
  `greeter = {}
function greeter.hello(command, virtualKey, objectKey, name)
  writeStringAsValue(command, virtualKey, "hello " .. name .. " from " .. objectKey)
end
function greeter.spin(command, virtualKey)
  while true do end
end
function greeter.escape(command, virtualKey)
  writeStringAsValue(command, virtualKey, tostring(io.open("/etc/passwd")))
end
`,
);

beforeAll(async () => {
  server = await spawnCacheismo(["-m", "16", "-e", "-d", scriptsDir, "--script-timeout-ms", "100"]);
  mc = new Memcached(`127.0.0.1:${server.port}`, { retries: 0, timeout: 3000 });
  raw = await RawClient.connect(server.port);
});
afterAll(async () => {
  mc.end();
  raw.close();
  await server.kill();
});

function get(key: string): Promise<string | undefined> {
  return new Promise((resolve, reject) => mc.get(key, (err: unknown, v: string | undefined) => (err ? reject(err) : resolve(v))));
}

/**
 * The npm client splits replies on CRLF, so it cannot read values that contain line breaks (the
 * listing methods): read those with the raw client and take the payload of the VALUE block.
 */
async function getLines(key: string): Promise<string> {
  const reply = await raw.request(`get ${key}\r\n`, "END\r\n");
  const m = /^VALUE \S+ 0 (\d+)\r\n/.exec(reply);
  if (m === null) throw new Error(`not a VALUE reply: ${JSON.stringify(reply)}`);
  return reply.slice(m[0].length, m[0].length + Number(m[1]));
}

describe("bundled objects through a real client", () => {
  test("map: new, put, get, delete, count, getkeys, getvalues, getall", async () => {
    expect(await get("map:new:m1")).toBe("CREATED");
    expect(await get("map:put:m1:a:1")).toBe("SUCCESS");
    expect(await get("map:put:m1:b:2")).toBe("SUCCESS");
    expect(await get("map:get:m1:a")).toBe("a : 1");
    expect(await get("map:get:m1:zz")).toBe("NOT_FOUND");
    expect(await get("map:count:m1")).toBe("2");
    expect(await getLines("map:getkeys:m1")).toBe("a\r\nb\r\n");
    expect(await getLines("map:getvalues:m1")).toBe("1\r\n2\r\n");
    expect(await getLines("map:getall:m1")).toBe("a : 1\r\nb : 2\r\n");
    expect(await get("map:delete:m1:a")).toBe("SUCCESS");
    expect(await get("map:count:m1")).toBe("1");
    expect(await get("map:get:nosuch:a")).toBe("ERROR_CACHE_MISS");
  });

  test("set: new, put, exist/exists, delete, count, getall, union, intersection", async () => {
    for (const k of ["set:new:s1", "set:new:s2"]) expect(await get(k)).toBe("CREATED");
    for (const k of ["set:put:s1:x", "set:put:s1:y", "set:put:s2:y", "set:put:s2:z"]) expect(await get(k)).toBe("SUCCESS");
    expect(await get("set:exist:s1:x")).toBe("EXISTS");
    expect(await get("set:exists:s1:x")).toBe("EXISTS");
    expect(await get("set:exists:s1:q")).toBe("NOT_FOUND");
    expect(await get("set:count:s1")).toBe("2");
    expect(await getLines("set:getall:s1")).toBe("x\r\ny\r\n");
    expect(await getLines("set:union:s1:s2")).toBe("x\r\ny\r\nz\r\n");
    expect(await getLines("set:intersection:s1:s2")).toBe("y\r\n");
    expect(await get("set:union:s1:nosuch")).toBe("ERROR_CACHE_MISS");
    expect(await get("set:delete:s1:x")).toBe("SUCCESS");
    expect(await get("set:count:s1")).toBe("1");
  });

  test("quota: new, addandcheck with and without an amount, reset, bad window type", async () => {
    expect(await get("quota:new:q1:2:day")).toBe("CREATED");
    expect(await get("quota:addandcheck:q1")).toBe("QUOTA_OK");
    expect(await get("quota:addandcheck:q1")).toBe("QUOTA_OK");
    expect(await get("quota:addandcheck:q1")).toBe("QUOTA_EXCEEDED");
    expect(await get("quota:reset:q1")).toBe("QUOTA_OK");
    expect(await get("quota:addandcheck:q1:2")).toBe("QUOTA_OK");
    expect(await get("quota:new:q2:5:week")).toBe("NOT_CREATED");
    for (const window of ["hour", "month"]) expect(await get(`quota:new:q3${window}:5:${window}`)).toBe("CREATED");
  });

  test("swcounter: new, add, getlast, getmin, getmax, getavg", async () => {
    expect(await get("swcounter:new:c1:2")).toBe("CREATED");
    expect(await get("swcounter:add:c1:100")).toBe("SUCCESS");
    expect(await get("swcounter:getmin:c1")).toBe("0");
    expect(await get("swcounter:add:c1:50")).toBe("SUCCESS");
    expect(await get("swcounter:getmin:c1")).toBe("50");
    expect(await get("swcounter:getmax:c1")).toBe("100");
    expect(await get("swcounter:getavg:c1")).toBe("75");
    expect(await get("swcounter:getlast:c1")).toBe("50");
    expect(await get("swcounter:add:c1:7")).toBe("SUCCESS");
    expect(await get("swcounter:getavg:c1")).toBe("28.5");
    expect(await get("swcounter:new:c2")).toBe("CREATED");
    expect(await get("swcounter:add:c2:3")).toBe("SUCCESS");
    expect(await get("swcounter:getavg:c2")).toBe("0.1875");
  });

  test("keys that are not virtual keys stay ordinary keys, and multi-gets mix both", async () => {
    expect(await raw.request("set user:123 0 0 2\r\nok\r\n")).toBe("STORED\r\n");
    expect(await raw.request("get user:123\r\n", "END\r\n")).toBe("VALUE user:123 0 2\r\nok\r\nEND\r\n");
    expect(await raw.request("get set:nosuchmethod:s1:x\r\n")).toBe("END\r\n");
    expect(await raw.request("get set:count:s2 user:123 missing\r\n", "END\r\n")).toBe("VALUE set:count:s2 0 1\r\n2\r\nVALUE user:123 0 2\r\nok\r\nEND\r\n");
  });

  test("objects are items: counted in stats like any other", async () => {
    const stats = await raw.request("stats\r\n", "END\r\n");
    expect(Number(/STAT curr_items (\d+)/.exec(stats)![1])).toBeGreaterThanOrEqual(8);
  });
});

describe("user scripts and safety over TCP", () => {
  test("a script in --scripts-dir defines a new object type", async () => {
    expect(await get("greeter:hello:world:ann")).toBe("hello ann from world");
  });

  test("a runaway script is stopped with SERVER_ERROR script timeout and the next request is served", async () => {
    expect(await raw.request("get greeter:spin:x\r\n")).toBe("SERVER_ERROR script timeout\r\n");
    expect(await raw.request("get map:count:m1\r\n", "END\r\n")).toBe("VALUE map:count:m1 0 1\r\n1\r\nEND\r\n");
  });

  test("the sandbox refuses io and a missing argument is an error reply, not silence", async () => {
    expect(await raw.request("get greeter:escape:x\r\n")).toStartWith("SERVER_ERROR ");
    expect(await raw.request("get map:get\r\n")).toStartWith("SERVER_ERROR ");
    expect(await raw.request("version\r\n")).toStartWith("VERSION ");
  });
});
