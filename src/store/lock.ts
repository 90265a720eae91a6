/**
 * A mutex in one Int32 cell of a SharedArrayBuffer, for the threads that serve one store:
 * 0 free, 1 held, 2 held with a thread asleep on it (Drepper, "Futexes Are Tricky", mutex 2).
 * An uncontended lock and unlock are one compare-and-swap and one subtract. A thread that finds it
 * held spins briefly (store operations hold it for well under a microsecond), then sleeps in
 * Atomics.wait until the holder's unlock wakes it. Not reentrant. A second cell counts the
 * acquisitions that found the lock held (`stats`: how contended the store is).
 *
 * It is also a sequence lock for readers that do not write: a third cell counts releases, so a
 * reader that saw the lock free with the same count before and after its reads (readBegin,
 * readValid) read nothing a holder was changing. Such readers never make holders wait.
 */
const SPINS = 100;
const STATE = 0;
const CONTENDED = 1;
const RELEASES = 2;

export class SharedLock {
  private readonly cell: Int32Array;

  /** The three cells padded to 128 bytes, so that nothing allocated after them shares their cache line. */
  static readonly BYTES = 128;

  constructor(readonly buffer = new SharedArrayBuffer(SharedLock.BYTES)) {
    this.cell = new Int32Array(buffer);
  }

  /** Acquisitions that found the lock held, by any thread (wraps at 2^31). */
  get contended(): number {
    return Atomics.load(this.cell, CONTENDED);
  }

  lock(): void {
    if (Atomics.compareExchange(this.cell, STATE, 0, 1) !== 0) this.lockContended();
  }

  /** Releases the lock; returns the release count this release made (a token for unchangedSince). */
  unlock(): number {
    const releases = (Atomics.add(this.cell, RELEASES, 1) + 1) | 0;
    if (Atomics.sub(this.cell, STATE, 1) !== 1) {
      Atomics.store(this.cell, STATE, 0);
      Atomics.notify(this.cell, STATE, 1);
    }
    return releases;
  }

  /**
   * Starts a lock-free read: a token for readValid, or -1 when a holder is at work (then take the
   * lock). The release count is read before the state, so a holder that takes the lock after this
   * either shows in the state at readValid or has changed the count by then.
   */
  readBegin(): number {
    const releases = Atomics.load(this.cell, RELEASES);
    return Atomics.load(this.cell, STATE) === 0 ? releases : -1;
  }

  /** Whether nothing held the lock since readBegin gave `token`: what was read is consistent. */
  readValid(token: number): boolean {
    return Atomics.load(this.cell, STATE) === 0 && Atomics.load(this.cell, RELEASES) === token;
  }

  /**
   * For a holder: whether no holder released the lock since readBegin gave `token`, so that what
   * was read since then is still as it was (taking the lock does not count as a release).
   */
  unchangedSince(token: number): boolean {
    return Atomics.load(this.cell, RELEASES) === token;
  }

  /** Runs fn holding the lock. */
  hold<T>(fn: () => T): T {
    this.lock();
    try {
      return fn();
    } finally {
      this.unlock();
    }
  }

  private lockContended(): void {
    const cell = this.cell;
    Atomics.add(cell, CONTENDED, 1);
    for (let i = 0; i < SPINS; i++) {
      if (Atomics.load(cell, STATE) === 0 && Atomics.compareExchange(cell, STATE, 0, 1) === 0) return;
    }
    while (Atomics.exchange(cell, STATE, 2) !== 0) Atomics.wait(cell, STATE, 2);
  }
}
