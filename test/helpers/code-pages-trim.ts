// Run as its own process: prints, as JSON, the process's resident file pages (RssFile, kB) before
// and after trimCodePages(), the bytes it advised, and a result computed after the trim (code
// that ran before must run again from the page cache).
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { trimCodePages } from "../../src/code-pages.ts";

function rssFileKb(): number {
  return Number(/RssFile:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))?.[1]);
}

const digest = () => createHash("sha256").update(JSON.stringify({ trimmed: [1, 2, 3] })).digest("hex");
const before = rssFileKb();
const digestBefore = digest();
const advised = trimCodePages();
const after = rssFileKb();
console.log(JSON.stringify({ before, after, advised, sameDigest: digest() === digestBefore }));
