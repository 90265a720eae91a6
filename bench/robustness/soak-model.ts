/**
 * What the soak knows about each key and how it judges a read. A key is written by one
 * connection only, so after every acknowledged write the exact bytes the server must hold are
 * known. A read is:
 *   - corrupt when the value is not a well-formed value of this key, or its newest record is the
 *     last acknowledged version but the bytes or flags differ from what was written, or it
 *     claims a version never written;
 *   - a lost write when it returns a version OLDER than the last acknowledged write (a
 *     value after an acknowledged delete, or an evicted item coming back, included);
 *   - a flush survivor when it returns a value the key held before a flush_all that certainly
 *     acted between then and the read (after a flush a key is missing or holds a newer write);
 *   - a miss (not an error) when the key is gone: eviction under -m pressure, expiry, or a flush.
 */
import type { Item } from "./client.ts";
import type { FlushLog, FlushWindow } from "./flush-log.ts";
import { type Decoded, decodeRecords, equalBytes } from "./record.ts";

export interface KeyState {
  readonly key: string;
  /** Last acknowledged version; a delete takes a version too, so no value can carry it. */
  version: number;
  /** What the server must hold; undefined when the key is absent (never written, deleted, evicted). */
  value: Uint8Array | undefined;
  flags: number;
  /** When the last request that wrote or returned `value` was answered (ms): it existed then. */
  seenAt: number;
}

/** When a read was sent and when its reply arrived (ms). */
export interface Timing {
  readonly sentAt: number;
  readonly answeredAt: number;
}

export interface Tally {
  reads: number;
  hits: number;
  /** Reads that found nothing where the model had a value: evicted or expired. */
  misses: number;
  corrupt: number;
  lostWrites: number;
  /** Replies no correct server sends here (e.g. EXISTS for a cas on a key nobody else writes). */
  unexpected: number;
  /** Values read (or appended to, or counted on) that a flush_all must have removed. */
  survivedFlush: number;
  /** The first few problems, for the report. */
  examples: string[];
}

export function newTally(): Tally {
  return { reads: 0, hits: 0, misses: 0, corrupt: 0, lostWrites: 0, unexpected: 0, survivedFlush: 0, examples: [] };
}

export function newKeyState(key: string): KeyState {
  return { key, version: 0, value: undefined, flags: 0, seenAt: 0 };
}

const MAX_EXAMPLES: number = 10;

export function note(tally: Tally, kind: "corrupt" | "lostWrites" | "unexpected" | "survivedFlush", what: string): void {
  tally[kind]++;
  if (tally.examples.length < MAX_EXAMPLES) tally.examples.push(`${kind}: ${what}`);
}

/**
 * Notes a value last known to exist at `seenAt` and found again by a request sent at `sentAt`, if
 * a flush certainly acted in between.
 */
export function checkSurvival(flushes: FlushLog, seenAt: number, sentAt: number, tally: Tally, what: string): void {
  const flush: FlushWindow | undefined = flushes.flushWithin(seenAt, sentAt);
  if (flush !== undefined) note(tally, "survivedFlush", `${what}: known to exist ${sentAt - seenAt} ms before this request, and "${flush.form.line}" acted in between`);
}

/** Judges a read of a key this connection owns; afterwards the state matches what the server showed. */
export function judgeOwnRead(state: KeyState, item: Item | undefined, tally: Tally, flushes: FlushLog, read: Timing): void {
  tally.reads++;
  if (item === undefined) {
    if (state.value !== undefined) tally.misses++;
    state.value = undefined;
    return;
  }
  tally.hits++;
  const decoded: Decoded = decodeRecords(item.value, state.key);
  if (decoded.error !== undefined) {
    note(tally, "corrupt", `${state.key}: ${decoded.error}`);
    return;
  }
  const version: number = Math.max(...decoded.versions);
  if (version < state.version || (version === state.version && state.value === undefined)) {
    note(tally, "lostWrites", `${state.key}: read version ${version}, last acknowledged ${state.value === undefined ? "removal at" : ""} ${state.version}`);
  } else if (version > state.version) {
    note(tally, "corrupt", `${state.key}: read version ${version}, never written (last ${state.version})`);
  } else if (!equalBytes(item.value, state.value!) || item.flags !== state.flags) {
    note(tally, "corrupt", `${state.key}: version ${version} differs from what was written (${item.value.length} bytes, flags ${item.flags}; wrote ${state.value!.length} bytes, flags ${state.flags})`);
  } else {
    checkSurvival(flushes, state.seenAt, read.sentAt, tally, `${state.key} version ${version}`);
    state.seenAt = read.answeredAt;
    return;
  }
  // Whatever it was, the server holds this now: judge later reads against it.
  state.value = item.value;
  state.flags = item.flags;
  state.version = Math.max(state.version, version);
  state.seenAt = read.answeredAt;
}

/** What the owner of a key knew when another connection's read of it was sent. */
export interface Floor {
  /** The owner's last acknowledged version. */
  readonly version: number;
  /** When that version was last known to exist; undefined when the owner holds no value. */
  readonly seenAt: number | undefined;
}

/**
 * Judges a read of a key another connection owns: any well-formed value of the key is fine
 * unless it is older than the owner's last acknowledged version when the read was sent, or is
 * that version and a flush certainly acted since it was last known to exist.
 */
export function judgeForeignRead(key: string, floor: Floor, item: Item | undefined, tally: Tally, flushes: FlushLog, read: Timing): void {
  tally.reads++;
  if (item === undefined) return;
  tally.hits++;
  const decoded: Decoded = decodeRecords(item.value, key);
  if (decoded.error !== undefined) {
    note(tally, "corrupt", `${key} (foreign read): ${decoded.error}`);
    return;
  }
  const version: number = Math.max(...decoded.versions);
  if (version < floor.version) note(tally, "lostWrites", `${key} (foreign read): version ${version}, owner had acknowledged ${floor.version}`);
  else if (version === floor.version && floor.seenAt !== undefined) checkSurvival(flushes, floor.seenAt, read.sentAt, tally, `${key} (foreign read) version ${version}`);
}
