/**
 * Server time in whole unix seconds, as memcached keeps it: read once a second by a timer
 * rather than per request. Tests may move it by hand. The seconds live in a shared cell, so
 * clocks attached to the same cell (one per thread) read one time.
 */
export const MAX_RELATIVE_EXPTIME = 60 * 60 * 24 * 30;

export class Clock {
  private readonly seconds: Float64Array;
  private timer: ReturnType<typeof setInterval> | undefined;

  /**
   * Attaches to `cell` (8 bytes) or to a new one set to now. A new cell is padded to 128 bytes, so
   * that nothing allocated after it shares its cache line: every lookup reads it, and a cell
   * written often beside it would make each read a miss.
   */
  constructor(readonly cell = new SharedArrayBuffer(128)) {
    this.seconds = new Float64Array(cell);
    if (this.seconds[0] === 0) this.tick();
  }

  get now(): number {
    return this.seconds[0];
  }

  set now(seconds: number) {
    this.seconds[0] = seconds;
  }

  start(): void {
    this.timer ??= setInterval(() => this.tick(), 1000);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  tick(): void {
    this.now = Math.floor(Date.now() / 1000);
  }

  /**
   * memcached's exptime rules: 0 never expires, negative is already expired, up to 30 days is
   * relative to now, above that an absolute unix time. Returns absolute seconds (0 = never).
   */
  expiryFor(exptime: number): number {
    if (exptime === 0) return 0;
    if (exptime < 0) return 1;
    if (exptime > MAX_RELATIVE_EXPTIME) return exptime <= this.now ? 1 : exptime;
    return this.now + exptime;
  }
}
