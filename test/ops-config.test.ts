/** The --config file, flags over file, programmatic options and SIGHUP's reload rules. */
import { describe, expect, test } from "bun:test";
import { applyReload, ConfigError, defaultConfig, helpText, loadConfig, OPTIONS, parseArgs, parseConfigFile, toArgs, withOptions } from "../src/config.ts";

const files = (contents: Record<string, string>) => (path: string): string => {
  const text = contents[path];
  if (text === undefined) throw new Error(`ENOENT: ${path}`);
  return text;
};

describe("config file", () => {
  test("keys are the long option names and take each kind of value", () => {
    const config = parseConfigFile(
      ['memory-limit = 32', 'max-item-size = "2m"', "max-conn-buffer = 131072", 'listen = "0.0.0.0"', "enable-shutdown = true", "verbose = 2", 'log-format = "json"'].join("\n"),
      "c.conf",
    );
    expect(config.memoryLimitMb).toBe(32);
    expect(config.maxItemSizeBytes).toBe(2 * 1024 * 1024);
    expect(config.maxConnBufferBytes).toBe(131072);
    expect(config.listen).toBe("0.0.0.0");
    expect(config.enableShutdown).toBe(true);
    expect(config.verbose).toBe(2);
    expect(config.logFormat).toBe("json");
    expect(config.port).toBe(defaultConfig().port);
  });

  test("an unknown key is an error that names the key and the file", () => {
    expect(() => parseConfigFile("memory-limt = 5", "c.conf")).toThrow(new ConfigError('c.conf: unknown key "memory-limt"'));
    // camelCase keys are not the file's spelling
    expect(() => parseConfigFile("memoryLimitMb = 5", "c.conf")).toThrow('unknown key "memoryLimitMb"');
    expect(() => parseConfigFile("[server]\nport = 1", "c.conf")).toThrow('unknown key "server"');
  });

  test("each value goes through its flag's validation", () => {
    const cases: [string, string][] = [
      ["memory-limit = 0", "c.conf: memory-limit must be between 1 and"],
      ['memory-limit = "64"', "c.conf: memory-limit must be a whole number"],
      ["memory-limit = 1.5", "c.conf: memory-limit must be a whole number"],
      ['max-item-size = "12q"', "is not a size"],
      ['log-format = "xml"', "c.conf: log-format must be one of logfmt, json"],
      ['enable-shutdown = "yes"', "c.conf: enable-shutdown must be true or false"],
      ["listen = 5", "c.conf: listen must be a string"],
      ["port = 70000", "c.conf: port must be between 0 and 65535"],
    ];
    for (const [text, message] of cases) expect(() => parseConfigFile(text, "c.conf")).toThrow(message);
  });

  test("command-line-only flags are refused in a file", () => {
    for (const key of ["help = true", "version = true", 'config = "other.conf"']) {
      expect(() => parseConfigFile(key, "c.conf")).toThrow("is a command-line flag, not a config file key");
    }
  });

  test("a TOML syntax error names the file", () => {
    expect(() => parseConfigFile("memory-limit = ", "broken.conf")).toThrow(/^broken\.conf: /);
  });

  test("flags given on the command line win over the file; the file wins over defaults", () => {
    const read = files({ "c.conf": "memory-limit = 32\nconn-limit = 100\nverbose = 2\n" });
    const config = loadConfig(["--config", "c.conf", "-m", "8", "-v"], read);
    expect(config.memoryLimitMb).toBe(8);
    expect(config.verbose).toBe(1);
    expect(config.connLimit).toBe(100);
    expect(config.configFile).toBe("c.conf");
    expect(loadConfig(["-m", "8"], read).connLimit).toBe(defaultConfig().connLimit);
  });

  test("a missing config file is a ConfigError naming the path", () => {
    expect(() => loadConfig(["--config", "nope.conf"], files({}))).toThrow(/^cannot read nope\.conf: /);
  });
});

describe("programmatic options", () => {
  test("withOptions checks each value like its flag and names the camelCase key", () => {
    expect(withOptions(defaultConfig(), { memoryLimitMb: 16, enableShutdown: true }).memoryLimitMb).toBe(16);
    expect(() => withOptions(defaultConfig(), { memoryLimitMb: 0 })).toThrow("memoryLimitMb must be between 1 and");
    expect(() => withOptions(defaultConfig(), { logFormat: "xml" })).toThrow("logFormat must be one of logfmt, json");
    expect(() => withOptions(defaultConfig(), { bogus: 1 } as never)).toThrow("unknown option bogus");
  });

  test("toArgs gives flags that parse back to the same configuration", () => {
    const options = { port: 1234, memoryLimitMb: 16, maxItemSizeBytes: 4096, verbose: 2, enableShutdown: true, logFormat: "json", listen: "0.0.0.0" };
    const args = toArgs(options);
    expect(args).toContain("--verbose");
    expect(parseArgs(args)).toEqual(withOptions(defaultConfig(), options));
  });
});

describe("SIGHUP reload", () => {
  test("live options change in the running config object; the rest are reported as needing a restart", () => {
    const running = defaultConfig();
    const sameObject = running;
    const next = { ...defaultConfig(), connLimit: 10, logFormat: "json", memoryLimitMb: 128, port: 1 };
    const { applied, needRestart } = applyReload(running, next);
    expect(sameObject.connLimit).toBe(10);
    expect(sameObject.logFormat).toBe("json");
    expect(sameObject.memoryLimitMb).toBe(64);
    expect(applied.map((c) => c.option.long)).toEqual(["conn-limit", "log-format"]);
    expect(needRestart.map((c) => [c.option.long, c.from, c.to])).toEqual([
      ["port", 11211, 1],
      ["memory-limit", 64, 128],
    ]);
  });

  test("reloading an unchanged configuration changes nothing", () => {
    const { applied, needRestart } = applyReload(defaultConfig(), defaultConfig());
    expect(applied).toEqual([]);
    expect(needRestart).toEqual([]);
  });
});

describe("options table", () => {
  test("the operations options are in the help with their defaults", () => {
    const help = helpText();
    expect(help).toContain("--config <value>");
    expect(help).toContain("--log-format <value>");
    expect(help).toMatch(/--metrics-port <value> .*\(default 0\)/);
    expect(help).toMatch(/--shutdown-timeout <value> .*\(default 5\)/);
  });

  test("every option has a unique long name and key, and a default its own validation accepts", () => {
    expect(new Set(OPTIONS.map((o) => o.long)).size).toBe(OPTIONS.length);
    expect(new Set(OPTIONS.map((o) => o.key)).size).toBe(OPTIONS.length);
    expect(withOptions(defaultConfig(), defaultConfig())).toEqual(defaultConfig());
  });
});
