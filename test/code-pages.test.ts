import { expect, test } from "bun:test";

test.skipIf(process.platform !== "linux")("trimming gives back the executable's resident code pages, and the code still runs", () => {
  const run = Bun.spawnSync(["bun", `${import.meta.dir}/helpers/code-pages-trim.ts`]);
  if (run.exitCode !== 0) throw new Error(run.stderr.toString());
  const { before, after, released, sameDigest } = JSON.parse(run.stdout.toString());
  // Starting up and importing leave well over 10 MiB of Bun's code resident.
  expect(before - after).toBeGreaterThan(8 * 1024);
  expect(released).toBeGreaterThan(8 * 1024 * 1024);
  expect(sameDigest).toBe(true);
});
