/**
 * A mutex in one Int32 cell of a SharedArrayBuffer, for the threads that serve one store:
 * 0 free, 1 held, 2 held with a thread asleep on it (Drepper, "Futexes Are Tricky", mutex 2).
 * An uncontended lock and unlock are one compare-and-swap and one subtract. A thread that finds it
 * held spins briefly (store operations hold it for well under a microsecond), then sleeps in
 * Atomics.wait until the holder's unlock wakes it. Not reentrant.
 */
const SPINS = 100;

export class SharedLock {
  private readonly cell: Int32Array;

  constructor(readonly buffer = new SharedArrayBuffer(4)) {
    this.cell = new Int32Array(buffer);
  }

  lock(): void {
    if (Atomics.compareExchange(this.cell, 0, 0, 1) !== 0) this.lockContended();
  }

  unlock(): void {
    if (Atomics.sub(this.cell, 0, 1) !== 1) {
      Atomics.store(this.cell, 0, 0);
      Atomics.notify(this.cell, 0, 1);
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
    for (let i = 0; i < SPINS; i++) {
      if (Atomics.load(cell, 0) === 0 && Atomics.compareExchange(cell, 0, 0, 1) === 0) return;
    }
    while (Atomics.exchange(cell, 0, 2) !== 0) Atomics.wait(cell, 0, 2);
  }
}
