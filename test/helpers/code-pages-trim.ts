// Run as its own process: prints, as JSON, the process's resident file pages (RssFile, kB) before
// and after trimCodePages(), what trimCodePages() says it gave back (bytes), and whether a result
// computed after the trim is the one computed before (code that ran must run again).
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { trimCodePages } from "../../src/code-pages.ts";

function rssFileKb(): number {
  return Number(/RssFile:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))?.[1]);
}

const digest = () => createHash("sha256").update(JSON.stringify({ trimmed: [1, 2, 3] })).digest("hex");
const before = rssFileKb();
const digestBefore = digest();
const released = trimCodePages();
const after = rssFileKb();
console.log(JSON.stringify({ before, after, released, sameDigest: digest() === digestBefore }));
