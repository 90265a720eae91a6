/**
 * A mutex in one Int32 cell of a SharedArrayBuffer, for the threads that serve one store:
 * 0 free, 1 held, 2 held with a thread asleep on it (Drepper, "Futexes Are Tricky", mutex 2).
 * An uncontended lock and unlock are one compare-and-swap and one subtract. A thread that finds it
 * held spins briefly (store operations hold it for well under a microsecond), then sleeps in
 * Atomics.wait until the holder's unlock wakes it. Not reentrant. A second cell counts the
 * acquisitions that found the lock held (`stats`: how contended the store is).
 */
const SPINS = 100;
const STATE = 0;
const CONTENDED = 1;

export class SharedLock {
  private readonly cell: Int32Array;

  constructor(readonly buffer = new SharedArrayBuffer(8)) {
    this.cell = new Int32Array(buffer);
  }

  /** Acquisitions that found the lock held, by any thread (wraps at 2^31). */
  get contended(): number {
    return Atomics.load(this.cell, CONTENDED);
  }

  lock(): void {
    if (Atomics.compareExchange(this.cell, STATE, 0, 1) !== 0) this.lockContended();
  }

  unlock(): void {
    if (Atomics.sub(this.cell, STATE, 1) !== 1) {
      Atomics.store(this.cell, STATE, 0);
      Atomics.notify(this.cell, STATE, 1);
    }
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
