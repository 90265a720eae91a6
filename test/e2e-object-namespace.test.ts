/**
 * Lua objects live in a store namespace of their own: whatever bytes a client puts in a key, no
 * command reads, overwrites, deletes or touches an object (a real server process with -e).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { RawClient } from "./helpers/raw-client.ts";
import { type SpawnedServer, spawnCacheismo } from "./helpers/spawn.ts";

let server: SpawnedServer;
let c: RawClient;

beforeAll(async () => {
  server = await spawnCacheismo(["-m", "16", "-e"]);
  c = await RawClient.connect(server.port);
});
afterAll(async () => {
  c.close();
  await server.kill();
});

const bytes = (text: string): Uint8Array => Buffer.from(text, "latin1");
const request = (text: string, ending: string | RegExp = "\r\n"): Promise<string> => c.request(bytes(text), ending);

/** The key the objects used to be stored under, which a client could send byte for byte. */
const OLD_STORAGE_KEY = "\x01set$s1";

describe("object namespace", () => {
  test("a client key spelling an object's storage key neither reads, replaces, changes nor deletes the object", async () => {
    expect(await request("get set:new:s1\r\n", "END\r\n")).toBe("VALUE set:new:s1 0 7\r\nCREATED\r\nEND\r\n");
    expect(await request("get set:put:s1:alice\r\n", "END\r\n")).toContain("SUCCESS");

    expect(await request(`get ${OLD_STORAGE_KEY}\r\n`, "END\r\n")).toBe("END\r\n");
    expect(await request(`gets ${OLD_STORAGE_KEY}\r\n`, "END\r\n")).toBe("END\r\n");
    expect(await request(`delete ${OLD_STORAGE_KEY}\r\n`)).toBe("NOT_FOUND\r\n");
    expect(await request(`touch ${OLD_STORAGE_KEY} 1\r\n`)).toBe("NOT_FOUND\r\n");
    expect(await request(`append ${OLD_STORAGE_KEY} 0 0 1\r\nx\r\n`)).toBe("NOT_STORED\r\n");
    expect(await request(`incr ${OLD_STORAGE_KEY} 1\r\n`)).toBe("NOT_FOUND\r\n");

    // The same bytes are an ordinary client key of its own, with its own value.
    const forged = "\x05\x00\x00\x00mallory";
    expect(await request(`set ${OLD_STORAGE_KEY} 0 0 ${forged.length}\r\n${forged}\r\n`)).toBe("STORED\r\n");
    expect(await request(`get ${OLD_STORAGE_KEY}\r\n`, "END\r\n")).toBe(`VALUE ${OLD_STORAGE_KEY} 0 ${forged.length}\r\n${forged}\r\nEND\r\n`);
    expect(await request(`delete ${OLD_STORAGE_KEY}\r\n`)).toBe("DELETED\r\n");

    expect(await request("get set:count:s1\r\n", "END\r\n")).toBe("VALUE set:count:s1 0 1\r\n1\r\nEND\r\n");
    expect(await request("get set:exist:s1:alice\r\n", "END\r\n")).toContain("\r\nEXISTS\r\n");
  });

  test("a plain key named like a virtual key's object key is not the object", async () => {
    expect(await request("set s2 0 0 5\r\nplain\r\n")).toBe("STORED\r\n");
    expect(await request("get set:count:s2\r\n", "END\r\n")).toBe("VALUE set:count:s2 0 16\r\nERROR_CACHE_MISS\r\nEND\r\n");
    expect(await request("get set:new:s2\r\n", "END\r\n")).toContain("CREATED");
    expect(await request("get s2\r\n", "END\r\n")).toBe("VALUE s2 0 5\r\nplain\r\nEND\r\n");
  });
});
