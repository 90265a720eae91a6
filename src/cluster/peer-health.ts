/**
 * Whether a peer takes forwarded requests, as twemproxy decides it: consecutive failures (a
 * request timing out, a connection failing) are counted against a failure limit and any reply
 * resets the count. A request that times out counts only if it was sent after the last failure
 * counted: requests queued behind one slow request on the same connection time out with it, and
 * are not more evidence against the peer than it is. At the limit the peer goes down: requests for it fail fast (or, with
 * auto-eject, its keys move to the other nodes) while a probe asks it `version` in the
 * background; the first answer brings it back. With auto-eject the probing starts only after the
 * retry timeout, as twemproxy leaves an ejected server out for server_retry_timeout.
 *
 * With several threads (-t) the health of a peer is one record in shared memory (HealthTable), so
 * that every thread of a node agrees whether a peer is up, down or ejected: a thread that sees
 * the table's generation change brings its continuum in line (ClusterRouter.ownerOf).
 */
export const enum PeerState {
  Up,
  Down,
  Ejected,
}

export interface HealthOptions {
  failureLimit: number;
  autoEject: boolean;
  retryTimeoutMs: number;
}

/** Float64 cells of one peer's record. */
const STATE = 0;
const FAILURES = 1;
const EJECTIONS = 2;
const RETRY_AT = 3;
const LAST_FAILURE_AT = 4;
const CELLS = 5;

/**
 * Every peer's health record, plus a generation (cell 0) bumped whenever a peer's state changes,
 * in one SharedArrayBuffer the threads of a node share.
 */
export class HealthTable {
  readonly cells: Float64Array;

  constructor(readonly buffer: SharedArrayBuffer) {
    this.cells = new Float64Array(buffer);
  }

  static create(peers: number): HealthTable {
    return new HealthTable(new SharedArrayBuffer((1 + peers * CELLS) * 8));
  }

  get generation(): number {
    return this.cells[0];
  }

  /** The record of peer `index` (an index of --peers). */
  peer(index: number, options: HealthOptions): PeerHealth {
    return new PeerHealth(options, this.cells.subarray(1 + index * CELLS, 1 + (index + 1) * CELLS), this.cells);
  }
}

export class PeerHealth {
  constructor(
    private readonly options: HealthOptions,
    private readonly cells: Float64Array,
    /** The table: cell 0 is its generation. */
    private readonly table: Float64Array,
  ) {}

  get state(): PeerState {
    return this.cells[STATE];
  }

  private set state(state: PeerState) {
    this.cells[STATE] = state;
    this.table[0]++;
  }

  get ejections(): number {
    return this.cells[EJECTIONS];
  }

  /** When an ejected peer may be probed again. */
  get retryAt(): number {
    return this.cells[RETRY_AT];
  }

  get up(): boolean {
    return this.state === PeerState.Up;
  }

  get stateName(): string {
    return this.state === PeerState.Up ? "up" : this.state === PeerState.Down ? "down" : "ejected";
  }

  answered(): void {
    this.cells[FAILURES] = 0;
  }

  /**
   * Counts a failure of a request sent at `sentAt`; true when it takes the peer out (the caller
   * fails what is in flight and probes).
   */
  failed(sentAt: number): boolean {
    const cells = this.cells;
    if (this.state !== PeerState.Up || sentAt < cells[LAST_FAILURE_AT]) return false;
    cells[LAST_FAILURE_AT] = Date.now();
    if (++cells[FAILURES] < this.options.failureLimit) return false;
    if (this.options.autoEject) {
      cells[EJECTIONS]++;
      cells[RETRY_AT] = Date.now() + this.options.retryTimeoutMs;
      this.state = PeerState.Ejected;
    } else this.state = PeerState.Down;
    return true;
  }

  /** The probe got an answer. */
  recovered(): void {
    this.cells[FAILURES] = 0;
    this.state = PeerState.Up;
  }
}
