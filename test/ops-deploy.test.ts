/** deploy/: the systemd unit and the sample config file stay valid and in step with the options. */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultConfig, OPTIONS, parseConfigFile } from "../src/config.ts";
import { ROOT } from "./helpers/spawn.ts";

const UNIT = readFileSync(join(ROOT, "deploy/cacheismo.service"), "utf8");
const CONF = readFileSync(join(ROOT, "deploy/cacheismo.conf"), "utf8");
const dir = mkdtempSync(join(tmpdir(), "cacheismo-deploy-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `Key=value` lines of the unit (the last one wins, as in systemd). */
function directives(unit: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of unit.split("\n")) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) map.set(m[1], m[2]);
  }
  return map;
}

// systemd-analyze comes with Debian's `systemd` package, which .ci/run installs.
const analyze = Bun.which("systemd-analyze");
if (!analyze) console.warn("ops-deploy: systemd-analyze not found (Debian package: systemd); skipping `systemd-analyze verify`");

describe("deploy/cacheismo.service", () => {
  test.skipIf(!analyze)("systemd-analyze verify accepts it without a single warning", async () => {
    // verify insists that ExecStart's program exists: point it at a stand-in, change nothing else.
    const standIn = join(dir, "cacheismo");
    writeFileSync(standIn, "#!/bin/sh\n", { mode: 0o755 });
    const unitPath = join(dir, "cacheismo.service");
    writeFileSync(unitPath, UNIT.replaceAll("/usr/local/bin/cacheismo", standIn));
    const proc = Bun.spawn([analyze!, "verify", "--man=no", unitPath], { stdout: "pipe", stderr: "pipe" });
    const timer = setTimeout(() => proc.kill("SIGKILL"), 30_000);
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    clearTimeout(timer);
    expect({ code, out, err }).toEqual({ code: 0, out: "", err: "" });
  });

  test("runs the installed executable with the installed config, sandboxed, reloaded by SIGHUP", () => {
    const d = directives(UNIT);
    expect(Object.fromEntries(["Type", "ExecStart", "ExecReload", "Restart", "DynamicUser", "NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp"].map((k) => [k, d.get(k)]))).toEqual({
      Type: "exec",
      ExecStart: "/usr/local/bin/cacheismo --config /etc/cacheismo/cacheismo.conf",
      ExecReload: "/bin/kill -HUP $MAINPID",
      Restart: "on-failure",
      DynamicUser: "yes",
      NoNewPrivileges: "yes",
      ProtectSystem: "strict",
      ProtectHome: "yes",
      PrivateTmp: "yes",
    });
  });

  test("MemoryMax is what the formula in its comment gives for the default options", () => {
    expect(UNIT).toContain("# MemoryMax = memory-limit + memory-limit/8 + script-memory-mb + 256M\n");
    const { memoryLimitMb, scriptMemoryMb } = defaultConfig();
    expect(directives(UNIT).get("MemoryMax")).toBe(`${memoryLimitMb + memoryLimitMb / 8 + scriptMemoryMb + 256}M`);
  });
});

/** The one option the shipped config sets: warm restarts for the service. */
const SERVICE_MEMORY_FILE = "/run/cacheismo/cacheismo.mem";

describe("deploy/cacheismo.conf", () => {
  const commented = [...CONF.matchAll(/^# ([a-z][a-z0-9-]*) = (.*)$/gm)];

  test("lists every option a config file may set, commented out, but for the service's memory file", () => {
    const listed = commented.map((m) => m[1]);
    expect(listed.toSorted()).toEqual(OPTIONS.filter((o) => !o.cliOnly && o.long !== "memory-file").map((o) => o.long).toSorted());
    expect(parseConfigFile(CONF, "cacheismo.conf")).toEqual({ ...defaultConfig(), memoryFile: SERVICE_MEMORY_FILE });
  });

  test("every listed value is the option's default and parses once uncommented", () => {
    const uncommented = CONF.replace(/^# ([a-z][a-z0-9-]*) = /gm, "$1 = ");
    expect(parseConfigFile(uncommented, "cacheismo.conf")).toEqual({ ...defaultConfig(), memoryFile: SERVICE_MEMORY_FILE });
  });

  test("keeps the cache in the unit's RuntimeDirectory, which survives systemctl restart", () => {
    const d = directives(UNIT);
    expect(SERVICE_MEMORY_FILE.startsWith(`/run/${d.get("RuntimeDirectory")}/`)).toBe(true);
    expect(d.get("RuntimeDirectoryPreserve")).toBe("restart");
  });

  test("marks exactly the options SIGHUP applies without a restart as [live]", () => {
    const live = new Set<string>();
    const lines = CONF.split("\n");
    for (const [i, line] of lines.entries()) {
      const m = /^# ([a-z][a-z0-9-]*) = /.exec(line);
      if (m && lines[i - 1]?.endsWith("[live]")) live.add(m[1]);
    }
    expect([...live].toSorted()).toEqual(OPTIONS.filter((o) => o.live).map((o) => o.long).toSorted());
  });
});
