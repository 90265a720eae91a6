/**
 * Server counters under memcached's stat names (dashboards depend on them: never rename one),
 * per thread in shared memory, and the text of each `stats` group.
 */
import { defineCellAccessors } from "./cell-accessors.ts";
import type { Config } from "./config.ts";
import type { Store } from "./store/store.ts";
import { VERSION } from "./version.ts";

/** Every counter, in the order `stats` lists them. */
export const COUNTER_NAMES = [
  "cmd_get",
  "cmd_set",
  "cmd_flush",
  "cmd_touch",
  "get_hits",
  "get_misses",
  "get_flushed",
  // Not memcached's: retrieval keys answered without the store lock (Store.peek).
  "get_lock_free",
  "delete_misses",
  "delete_hits",
  "incr_misses",
  "incr_hits",
  "decr_misses",
  "decr_hits",
  "cas_misses",
  "cas_hits",
  "cas_badval",
  "touch_hits",
  "touch_misses",
  "auth_cmds",
  "auth_errors",
  "curr_connections",
  "total_connections",
  "rejected_connections",
  "conn_yields",
  "bytes_read",
  "bytes_written",
] as const;
export type CounterName = (typeof COUNTER_NAMES)[number];

/**
 * One thread's counters (`counters.cmd_get++`), kept in its own row of a CounterTable so that
 * `stats` on any thread can sum every thread's rows. Each row has one writer.
 */
export interface Counters extends Record<CounterName, number> {}
export class Counters {
  constructor(readonly cells: Float64Array = new Float64Array(new SharedArrayBuffer(COUNTER_NAMES.length * 8))) {}
}
defineCellAccessors(Counters.prototype, COUNTER_NAMES.map((name, i) => [name, i] as const));

const CURR_CONNECTIONS = COUNTER_NAMES.indexOf("curr_connections");

/**
 * Rows start on their own 128-byte lines (two cache lines, as the adjacent-line prefetcher pairs
 * them): unpadded, one thread's bytes_read/bytes_written shared a line with the next thread's
 * cmd_get/get_hits, and every request of either thread moved that line between cores.
 */
const ROW_STRIDE_BYTES = Math.ceil((COUNTER_NAMES.length * 8) / 128) * 128;

/** Every thread's counters, one row each, in one SharedArrayBuffer. */
export class CounterTable {
  readonly rows: Counters[];

  constructor(readonly buffer: SharedArrayBuffer) {
    // A buffer of one Counters (no padding) holds one row.
    const count = Math.ceil(buffer.byteLength / ROW_STRIDE_BYTES);
    this.rows = Array.from({ length: count }, (_, r) => new Counters(new Float64Array(buffer, r * ROW_STRIDE_BYTES, COUNTER_NAMES.length)));
  }

  static create(threads: number): CounterTable {
    return new CounterTable(new SharedArrayBuffer(threads * ROW_STRIDE_BYTES));
  }

  /** Each counter summed over the threads. */
  totals(): Record<CounterName, number> {
    const totals = {} as Record<CounterName, number>;
    COUNTER_NAMES.forEach((name, i) => {
      let sum = 0;
      for (const row of this.rows) sum += row.cells[i];
      totals[name] = sum;
    });
    return totals;
  }

  /** `stats reset`: every counter of every thread to zero but the live connection counts. */
  reset(): void {
    for (const row of this.rows) {
      const live = row.cells[CURR_CONNECTIONS];
      row.cells.fill(0);
      row.cells[CURR_CONNECTIONS] = live;
    }
  }
}

export interface StatsSource {
  readonly config: Config;
  readonly store: Store;
  /** Every thread's counters (one row for a single thread). */
  readonly counterTable: CounterTable;
  /** Worker threads serving the port. */
  readonly threads: number;
  readonly startedAt: number;
  /** Extra `stats` lines from other parts (scripting, cluster), appended to the general group. */
  readonly extraStats: (() => [string, string | number][])[];
}

/** Lines of a `stats [group]` reply, or null for an unknown group (memcached answers ERROR). */
export function statsLines(src: StatsSource, group: string): [string, string | number][] | null {
  const { store, config } = src;
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
      for (const [k, v] of Object.entries(src.counterTable.totals())) lines.push([k, v]);
      lines.push(
        ["threads", src.threads],
        ["limit_maxbytes", store.limitBytes],
        ["bytes", store.bytesUsed],
        ["curr_items", store.itemCount],
        ["total_items", store.counters.totalItems],
        ["evictions", store.counters.evictions],
        ["reclaimed", store.counters.reclaimed],
        ["expired_unfetched", store.counters.expiredUnfetched],
        ["crawler_reclaimed", store.crawler.reclaimed],
        ["crawler_items_checked", store.crawler.itemsChecked],
        ["hash_bytes", store.hashBuckets * 4],
        ["arena_free_bytes", store.arena.freeUnits * 32],
        // Store operations and Lua calls that had to wait for another thread (-t above 1).
        ["store_lock_waits", store.lock.contended],
        ["objects_lock_waits", store.objectsLock.contended],
      );
      // Which thread took how many connections (-t above 1): the kernel spreads them over the threads.
      if (src.threads > 1) {
        const column = COUNTER_NAMES.indexOf("total_connections");
        src.counterTable.rows.forEach((row, i) => lines.push([`thread${i}:total_connections`, row.cells[column]]));
      }
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
        ["num_threads", src.threads],
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
