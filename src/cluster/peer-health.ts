/**
 * Whether a peer takes forwarded requests, as twemproxy decides it: consecutive failures (a
 * request timing out, a connection failing) are counted against a failure limit and any reply
 * resets the count. A request that times out counts only if it was sent after the last failure
 * counted: requests queued behind one slow request on the same connection time out with it, and
 * are not more evidence against the peer than it is. At the limit the peer goes down: requests for it fail fast (or, with
 * auto-eject, its keys move to the other nodes) while a probe asks it `version` in the
 * background; the first answer brings it back. With auto-eject the probing starts only after the
 * retry timeout, as twemproxy leaves an ejected server out for server_retry_timeout.
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

export class PeerHealth {
  state = PeerState.Up;
  failures = 0;
  ejections = 0;
  /** When an ejected peer may be probed again. */
  retryAt = 0;
  private lastFailureAt = 0;

  constructor(private readonly options: HealthOptions) {}

  get up(): boolean {
    return this.state === PeerState.Up;
  }

  get stateName(): string {
    return this.state === PeerState.Up ? "up" : this.state === PeerState.Down ? "down" : "ejected";
  }

  answered(): void {
    this.failures = 0;
  }

  /**
   * Counts a failure of a request sent at `sentAt`; true when it takes the peer out (the caller
   * fails what is in flight and probes).
   */
  failed(sentAt: number): boolean {
    if (this.state !== PeerState.Up || sentAt < this.lastFailureAt) return false;
    this.lastFailureAt = Date.now();
    if (++this.failures < this.options.failureLimit) return false;
    if (this.options.autoEject) {
      this.state = PeerState.Ejected;
      this.ejections++;
      this.retryAt = Date.now() + this.options.retryTimeoutMs;
    } else this.state = PeerState.Down;
    return true;
  }

  /** The probe got an answer. */
  recovered(): void {
    this.state = PeerState.Up;
    this.failures = 0;
  }
}
