/** Markdown output: one table per workload, then the targets and any problems. */
import type { SystemResult } from "./systems.ts";
import { MODEL_NAMES } from "./systems.ts";
import type { Trace } from "./workloads.ts";

const MIB = 1024 * 1024;

export interface WorkloadReport {
  readonly trace: Trace;
  readonly results: readonly SystemResult[];
}

export interface Targets {
  /**
   * Max distance of cacheismo's hit ratio from the ideal LRU, in percentage points: either way
   * when cacheismo runs LRU (beating an exact LRU would mean a bug), only below it otherwise.
   */
  readonly maxGapPp: number;
  readonly lruPolicy: boolean;
  /** Min fraction of -m holding key + value bytes on W1. */
  readonly minW1Held: number;
  /** Max RSS above -m, in bytes. */
  readonly rssHeadroomBytes: number;
}

const hitRatio = (r: SystemResult): number | undefined =>
  r.replay && r.replay.measured.requests > 0 ? r.replay.measured.hits / r.replay.measured.requests : undefined;
const byteHitRatio = (r: SystemResult): number | undefined =>
  r.replay && r.replay.measured.requestBytes > 0 ? r.replay.measured.hitBytes / r.replay.measured.requestBytes : undefined;

const pct = (x: number | undefined): string => (x === undefined ? "–" : `${(x * 100).toFixed(2)} %`);
const mib = (bytes: number | undefined): string => (bytes === undefined ? "–" : `${(bytes / MIB).toFixed(1)} MiB`);
const count = (n: number | undefined): string => (n === undefined ? "–" : n.toLocaleString("en-US"));

function deltaPp(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined) return "–";
  const pp = (a - b) * 100;
  return `${pp >= 0 ? "+" : ""}${pp.toFixed(2)}`;
}

function find(results: readonly SystemResult[], system: string): SystemResult | undefined {
  return results.find((r) => r.system === system);
}

export function workloadTable(report: WorkloadReport, memoryMb: number): string {
  const { trace, results } = report;
  const memcached = hitRatio(find(results, "memcached") ?? results[0]);
  const idealItem = find(results, MODEL_NAMES["cacheismo-item"]);
  const idealPayload = find(results, MODEL_NAMES.payload);
  const mBytes = memoryMb * MIB;
  const lines: string[] = [
    `### ${trace.spec.name}: ${trace.spec.description}`,
    "",
    `${count(trace.keyspace.count)} keys, ${count(trace.requests.length)} requests, measured over the last ${count(trace.requests.length - trace.measureFrom)}; -m ${memoryMb}`,
    "",
    "| system | hit ratio | Δ vs memcached (pp) | Δ vs ideal, item cost (pp) | Δ vs ideal, payload (pp) | byte hit ratio | items at end | key+value held | held / -m | `bytes` / `limit_maxbytes` | RSS at start → end (peak) | evictions | set errors | corrupt hits | time |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const r of results) {
    const h = hitRatio(r);
    const mem = r.memory;
    const usage = mem?.bytes !== undefined && mem.limitMaxbytes ? `${mib(mem.bytes)} / ${mib(mem.limitMaxbytes)} (${pct(mem.bytes / mem.limitMaxbytes)})` : "–";
    const problems = r.problems;
    const cells = [
      r.error ? `${r.system} (FAILED)` : r.system,
      pct(h),
      r.system === "memcached" ? "" : deltaPp(h, memcached),
      r.system === idealItem?.system ? "" : deltaPp(h, idealItem && hitRatio(idealItem)),
      r.system === idealPayload?.system ? "" : deltaPp(h, idealPayload && hitRatio(idealPayload)),
      pct(byteHitRatio(r)),
      count(r.itemsHeld),
      mib(r.heldPayloadBytes),
      r.heldPayloadBytes === undefined ? "–" : pct(r.heldPayloadBytes / mBytes),
      usage,
      r.kind === "model" ? "n/a" : `${mib(r.rssAtStartBytes)} → ${mib(mem?.rssBytes)} (${mib(mem?.peakRssBytes)})`,
      count(mem?.evictions),
      problems ? count(problems.setErrors + problems.getErrors) : r.kind === "model" ? "n/a" : "–",
      problems ? count(problems.corruptHits) : r.kind === "model" ? "n/a" : "–",
      `${r.seconds.toFixed(1)} s`,
    ];
    lines.push(`| ${cells.join(" | ")} |`);
  }
  const curr = results.filter((r) => r.kind === "server" && r.itemsHeld !== undefined && r.memory?.currItems !== r.itemsHeld);
  for (const r of curr) lines.push("", `Note: ${r.system} reports curr_items ${count(r.memory?.currItems)} but the final scan found ${count(r.itemsHeld)}.`);
  return lines.join("\n");
}

/** The target checks for cacheismo, plus every failure and problem sample; returns [text, problems found]. */
export function checks(reports: readonly WorkloadReport[], memoryMb: number, targets: Targets): [string, boolean] {
  const lines: string[] = ["## Targets (cacheismo)", ""];
  const mBytes = memoryMb * MIB;
  let broken = false;
  const mark = (ok: boolean | undefined): string => (ok === undefined ? "n/a" : ok ? "ok" : "MISSED");
  for (const { trace, results } of reports) {
    const ours = find(results, "cacheismo");
    if (!ours) continue;
    const h = hitRatio(ours);
    for (const cost of ["cacheismo-item", "payload"] as const) {
      const ideal = find(results, MODEL_NAMES[cost]);
      const gap = h !== undefined && ideal ? (h - hitRatio(ideal)!) * 100 : undefined;
      const ok = gap === undefined ? undefined : targets.lruPolicy ? Math.abs(gap) <= targets.maxGapPp : gap >= -targets.maxGapPp;
      const goal = targets.lruPolicy ? `within ±${targets.maxGapPp} pp of` : `at most ${targets.maxGapPp} pp below`;
      lines.push(`- ${trace.spec.name}: hit ratio ${goal} ${MODEL_NAMES[cost]}: ${gap === undefined ? "–" : `${gap >= 0 ? "+" : ""}${gap.toFixed(2)} pp`} → ${mark(ok)}`);
    }
    if (trace.spec.name === "W1") {
      const held = ours.heldPayloadBytes === undefined ? undefined : ours.heldPayloadBytes / mBytes;
      lines.push(`- W1: key+value held ≥ ${pct(targets.minW1Held)} of -m: ${pct(held)} → ${mark(held === undefined ? undefined : held >= targets.minW1Held)}`);
    }
    const rss = ours.memory?.rssBytes;
    const peak = ours.memory?.peakRssBytes;
    // The bound holds at the peak (VmHWM), not just at the end of the run.
    lines.push(`- ${trace.spec.name}: peak RSS ≤ -m + ${mib(targets.rssHeadroomBytes)} (${mib(mBytes + targets.rssHeadroomBytes)}): ${mib(peak)} → ${mark(peak === undefined ? undefined : peak <= mBytes + targets.rssHeadroomBytes)} (at end ${mib(rss)})`);
  }

  const trouble: string[] = [];
  for (const { trace, results } of reports) {
    for (const r of results) {
      const where = `${trace.spec.name} / ${r.system}`;
      if (r.error) trouble.push(`- ${where}: FAILED: ${r.error}`);
      const p = r.problems;
      if (p && p.corruptHits + p.getErrors + p.setErrors > 0) {
        trouble.push(`- ${where}: ${p.corruptHits} corrupt hits, ${p.getErrors} get errors, ${p.setErrors} set errors; first: ${p.samples.map((s) => JSON.stringify(s)).join(", ")}`);
      }
      // Refused sets are a server's choice (memcached may answer "out of memory"); corruption and failures are bugs.
      if (r.error || (p && p.corruptHits + p.getErrors > 0)) broken = true;
    }
  }
  if (trouble.length) lines.push("", "## Problems", "", ...trouble);
  return [lines.join("\n"), broken];
}
