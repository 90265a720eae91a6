#!/usr/bin/env bun
/** Command-line entry: flags → config → server, signals, exit codes. */
import { ConfigError, helpText, parseArgs } from "./config.ts";
import { CacheServer } from "./server.ts";
import { COMMIT, VERSION } from "./version.ts";

function main(argv: string[]): void {
  let config;
  try {
    config = parseArgs(argv);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    process.stderr.write(`cacheismo: ${e.message}\nrun "cacheismo --help" to see every option\n`);
    process.exit(2);
  }
  if (config.help) {
    process.stdout.write(helpText());
    process.exit(0);
  }
  if (config.version) {
    process.stdout.write(`cacheismo ${VERSION} (${COMMIT})\n`);
    process.exit(0);
  }
  const server = new CacheServer(config, { onShutdown: () => process.exit(0) });
  try {
    server.start();
  } catch (e) {
    process.stderr.write(`cacheismo: cannot listen on ${config.listen}:${config.port}: ${(e as Error).message}\n`);
    process.exit(1);
  }
  if (config.verbose > 0) {
    process.stderr.write(`level=info msg="listening" addr=${config.listen}:${server.port} memory_mb=${config.memoryLimitMb}\n`);
  }
  const stop = (): void => {
    void server.stop().then(() => process.exit(0));
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main(process.argv.slice(2));
