/**
 * Server counters under memcached's stat names (dashboards depend on them: never rename one),
 * and the text of each `stats` group.
 */
import type { Config } from "./config.ts";
import type { Store } from "./store/store.ts";
import { VERSION } from "./version.ts";

export class Counters {
  cmd_get = 0;
  cmd_set = 0;
  cmd_flush = 0;
  cmd_touch = 0;
  get_hits = 0;
  get_misses = 0;
  get_flushed = 0;
  delete_misses = 0;
  delete_hits = 0;
  incr_misses = 0;
  incr_hits = 0;
  decr_misses = 0;
  decr_hits = 0;
  cas_misses = 0;
  cas_hits = 0;
  cas_badval = 0;
  touch_hits = 0;
  touch_misses = 0;
  auth_cmds = 0;
  auth_errors = 0;
  curr_connections = 0;
  total_connections = 0;
  rejected_connections = 0;
  conn_yields = 0;
  bytes_read = 0;
  bytes_written = 0;

  reset(): void {
    const live = this.curr_connections;
    Object.assign(this, new Counters());
    this.curr_connections = live;
  }
}

export interface StatsSource {
  readonly config: Config;
  readonly store: Store;
  readonly counters: Counters;
  readonly startedAt: number;
  /** Extra `stats` lines from other parts (scripting, cluster), appended to the general group. */
  readonly extraStats: (() => [string, string | number][])[];
}

/** Lines of a `stats [group]` reply, or null for an unknown group (memcached answers ERROR). */
export function statsLines(src: StatsSource, group: string): [string, string | number][] | null {
  const { store, counters, config } = src;
  const now = store.clock.now;
  switch (group) {
    case "": {
      const mem = process.memoryUsage();
      const cpu = process.cpuUsage();
      const lines: [string, string | number][] = [
        ["pid", process.pid],
        ["uptime", now - src.startedAt],
        ["time", now],
        ["version", VERSION],
        ["libevent", "bun"],
        ["pointer_size", 64],
        ["rusage_user", (cpu.user / 1e6).toFixed(6)],
        ["rusage_system", (cpu.system / 1e6).toFixed(6)],
        ["max_connections", config.connLimit],
        ["rss", mem.rss],
        ["js_heap_used", mem.heapUsed],
      ];
      for (const [k, v] of Object.entries(counters)) lines.push([k, v]);
      lines.push(
        ["threads", 1],
        ["limit_maxbytes", store.limitBytes],
        ["bytes", store.bytesUsed],
        ["curr_items", store.itemCount],
        ["total_items", store.counters.totalItems],
        ["evictions", store.counters.evictions],
        ["reclaimed", store.counters.reclaimed],
        ["hash_bytes", store.hashBuckets * 4],
        ["arena_free_bytes", store.arena.freeUnits * 32],
      );
      for (const extra of src.extraStats) lines.push(...extra());
      return lines;
    }
    case "settings":
      return [
        ["maxbytes", store.limitBytes],
        ["maxconns", config.connLimit],
        ["tcpport", config.port],
        ["udpport", 0],
        ["inter", config.listen],
        ["verbosity", config.verbose],
        ["evictions", "on"],
        ["growth_factor", "1.00"],
        ["chunk_size", 32],
        ["num_threads", 1],
        ["cas_enabled", "yes"],
        ["tcp_backlog", 1024],
        ["binding_protocol", "ascii"],
        ["item_size_max", config.maxItemSizeBytes],
        ["idle_timeout", config.idleTimeoutSeconds],
        ["max_conn_buffer", config.maxConnBufferBytes],
        ["shutdown_command", config.enableShutdown ? "yes" : "no"],
      ];
    case "items":
    case "slabs": {
      // One "class" covers every size: there are no slab classes to report separately.
      if (store.itemCount === 0 && group === "items") return [];
      const p = group === "items" ? "items:1:" : "1:";
      return group === "items"
        ? [
            [`${p}number`, store.itemCount],
            [`${p}evicted`, store.counters.evictions],
            [`${p}reclaimed`, store.counters.reclaimed],
          ]
        : [
            [`${p}chunk_size`, 32],
            [`${p}used_bytes`, store.bytesUsed],
            [`${p}free_bytes`, store.arena.freeUnits * 32],
            ["active_slabs", 1],
            ["total_malloced", store.limitBytes],
          ];
    }
    default:
      return null;
  }
}
