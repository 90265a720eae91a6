/**
 * Builds the single-file executable: `bun run build` → dist/cacheismo (this machine's platform).
 * `bun run build --all` also cross-compiles the release targets. Everything the server needs
 * (the Lua wasm, the bundled Lua scripts) is imported by the source and so embedded.
 */
import { $ } from "bun";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const TARGETS = ["bun-linux-x64", "bun-linux-x64-baseline", "bun-linux-arm64", "bun-darwin-arm64", "bun-windows-x64"] as const;

const commit = (await $`git rev-parse --short HEAD`.nothrow().quiet()).stdout.toString().trim() || "unknown";
const outDir = join(import.meta.dir, "dist");
mkdirSync(outDir, { recursive: true });

async function build(target: string | null, outfile: string): Promise<void> {
  const result = await Bun.build({
    entrypoints: [join(import.meta.dir, "src/main.ts")],
    compile: {
      outfile,
      ...(target ? { target: target as Bun.Build.CompileTarget } : {}),
      // A service must not pick up .env or bunfig.toml from whatever directory it runs in.
      autoloadDotenv: false,
      autoloadBunfig: false,
    },
    minify: true,
    sourcemap: "none",
    define: { CACHEISMO_COMMIT: JSON.stringify(commit) },
  });
  if (!result.success) {
    for (const log of result.logs) console.error(log);
    throw new Error(`build failed for ${target ?? "host"}`);
  }
  console.log(`built ${outfile}`);
}

await build(null, join(outDir, "cacheismo"));
if (process.argv.includes("--all")) {
  for (const t of TARGETS) await build(t, join(outDir, `cacheismo-${t.replace(/^bun-/, "")}`));
  const sums = await $`cd ${outDir} && sha256sum cacheismo-*`.text();
  await Bun.write(join(outDir, "SHA256SUMS"), sums);
}
