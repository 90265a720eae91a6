/** src/metrics.ts: Prometheus text from `stats`, latency histograms, the /metrics endpoint. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type InProcessServer, startServer } from "../src/index.ts";
import { HISTOGRAM_COMMANDS, LatencyHistograms, statsToPrometheus } from "../src/metrics.ts";
import { RawClient } from "./helpers/raw-client.ts";
import { freePort } from "./helpers/spawn.ts";

/** Sample lines of the Prometheus text format (comments aside). */
const SAMPLE = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$/;

function expectValidExposition(text: string): void {
  expect(text.endsWith("\n")).toBe(true);
  for (const line of text.trimEnd().split("\n")) {
    if (line.startsWith("# ")) expect(line).toMatch(/^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$/);
    else expect(line).toMatch(SAMPLE);
  }
}

function sample(text: string, name: string): string | undefined {
  return text.split("\n").find((l) => l.startsWith(`${name} `))?.slice(name.length + 1);
}

describe("latency histograms", () => {
  test("record() counts into the first bucket whose bound is not below the time, cumulatively rendered", () => {
    const h = new LatencyHistograms([0.001, 0.01, 0.1]);
    h.record("get", 0.0005);
    h.record("get", 0.001); // on the bound: le is inclusive
    h.record("get", 0.05);
    h.record("get", 3);
    const text = h.render();
    expect(text).toContain('cacheismo_command_duration_seconds_bucket{command="get",le="0.001"} 2\n');
    expect(text).toContain('cacheismo_command_duration_seconds_bucket{command="get",le="0.01"} 2\n');
    expect(text).toContain('cacheismo_command_duration_seconds_bucket{command="get",le="0.1"} 3\n');
    expect(text).toContain('cacheismo_command_duration_seconds_bucket{command="get",le="+Inf"} 4\n');
    expect(text).toContain('cacheismo_command_duration_seconds_count{command="get"} 4\n');
    expect(sample(text, 'cacheismo_command_duration_seconds_sum{command="get"}')).toBe(String(0.0005 + 0.001 + 0.05 + 3));
    expectValidExposition(text);
  });

  test("gets and gats share get's and gat's histograms; unknown commands count as other", () => {
    const h = new LatencyHistograms();
    h.record("gets", 0.0001);
    h.record("gat", 0.0001);
    h.record("gats", 0.0001);
    h.record("mg", 0.0001);
    h.record("verbosity", 0.0001);
    expect(h.count("get")).toBe(1);
    expect(h.count("gat")).toBe(2);
    expect(h.count("other")).toBe(2);
    expect(h.count("set")).toBe(0);
  });

  test("every command has a histogram series from the start, so dashboards see zeros, not gaps", () => {
    const text = new LatencyHistograms().render();
    for (const command of HISTOGRAM_COMMANDS) expect(text).toContain(`cacheismo_command_duration_seconds_count{command="${command}"} 0\n`);
    expect(text.match(/^# TYPE cacheismo_command_duration_seconds histogram$/gm)).toHaveLength(1);
  });

  test("bounds must increase", () => {
    expect(() => new LatencyHistograms([0.1, 0.01])).toThrow("histogram bounds must increase");
  });
});

describe("stats as Prometheus text", () => {
  test("counters are counters, levels are gauges, text stats become cacheismo_info labels", () => {
    const text = statsToPrometheus([
      ["cmd_get", 5],
      ["curr_connections", 2],
      ["rusage_user", "0.123400"],
      ["version", "0.1.0"],
      ["libevent", "bun"],
      ["cluster:peer 1", 3],
    ]);
    expect(text).toContain("# TYPE cacheismo_cmd_get counter\ncacheismo_cmd_get 5\n");
    expect(text).toContain("# TYPE cacheismo_curr_connections gauge\ncacheismo_curr_connections 2\n");
    expect(text).toContain("# TYPE cacheismo_rusage_user counter\ncacheismo_rusage_user 0.123400\n");
    expect(text).toContain("cacheismo_cluster_peer_1 3\n");
    expect(text).toContain('cacheismo_info{version="0.1.0",libevent="bun"} 1\n');
    expectValidExposition(text);
  });
});

describe("per-peer stats as Prometheus families", () => {
  test("each per-peer stat is one family labelled by peer, the state a label of cacheismo_peer_state", () => {
    const text = statsToPrometheus([
      ["peer:10.0.0.2:11211:forwarded", 42],
      ["peer:10.0.0.2:11211:state", "up"],
      ["peer:10.0.0.2:11211:in_flight", 3],
      ["peer:10.0.0.3:11211:forwarded", 7],
      ["peer:10.0.0.3:11211:state", "ejected"],
      ["peer:10.0.0.3:11211:in_flight", 0],
      ["version", "0.1.0"],
    ]);
    expect(text).toContain('# TYPE cacheismo_peer_forwarded counter\ncacheismo_peer_forwarded{peer="10.0.0.2:11211"} 42\ncacheismo_peer_forwarded{peer="10.0.0.3:11211"} 7\n');
    expect(text).toContain('# TYPE cacheismo_peer_in_flight gauge\ncacheismo_peer_in_flight{peer="10.0.0.2:11211"} 3\ncacheismo_peer_in_flight{peer="10.0.0.3:11211"} 0\n');
    expect(text).toContain('cacheismo_peer_state{peer="10.0.0.3:11211",state="ejected"} 1\n');
    expect(text).toContain('cacheismo_info{version="0.1.0"} 1\n');
    expectValidExposition(text);
  });
});

describe("/metrics and /healthz of a running server", () => {
  let server: InProcessServer;
  let base: string;

  beforeAll(async () => {
    server = await startServer({ port: 0, memoryLimitMb: 8, metricsPort: freePort() });
    base = server.metricsUrl!.replace(/\/metrics$/, "");
  });
  afterAll(async () => {
    await server.stop();
  });

  test("a scrape shows every stats counter under cacheismo_<name> and each command's latency, with live values", async () => {
    const c = await RawClient.connect(server.port);
    expect(await c.request("set a 0 0 1\r\nx\r\n")).toBe("STORED\r\n");
    expect(await c.request("get a\r\nget nope\r\n", "END\r\nEND\r\n")).toBe("VALUE a 0 1\r\nx\r\nEND\r\nEND\r\n");
    c.close();

    const response = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(5000) });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toStartWith("text/plain; version=0.0.4");
    const text = await response.text();
    expectValidExposition(text);
    const stats = await server.stats();
    for (const [name, value] of Object.entries(stats)) {
      if (/^-?\d+(\.\d+)?$/.test(value)) expect(text).toContain(`\ncacheismo_${name} `);
    }
    expect(sample(text, "cacheismo_cmd_get")).toBe("2");
    expect(sample(text, "cacheismo_get_hits")).toBe("1");
    expect(sample(text, "cacheismo_curr_items")).toBe("1");
    // the protocol times every command into the histograms /metrics serves
    expect(text).toContain('cacheismo_command_duration_seconds_count{command="get"} 2\n');
    expect(text).toContain('cacheismo_command_duration_seconds_count{command="set"} 1\n');
  });

  test("/healthz answers ok while the server runs; other paths are 404", async () => {
    const health = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(5000) });
    expect(health.status).toBe(200);
    expect(await health.text()).toBe("ok\n");
    expect((await fetch(`${base}/nope`, { signal: AbortSignal.timeout(5000) })).status).toBe(404);
  });
});

test("metrics stop with the server", async () => {
  const server = await startServer({ port: 0, metricsPort: freePort() });
  const url = server.metricsUrl!;
  expect((await fetch(url, { signal: AbortSignal.timeout(5000) })).status).toBe(200);
  await server.stop();
  await expect(fetch(url, { signal: AbortSignal.timeout(5000) })).rejects.toThrow();
});
