/** Zipf popularity over ranks 0..n-1: P(rank r) ∝ 1 / (r + 1)^alpha. Sampled by inverse CDF. */
import type { Prng } from "./prng.ts";

export class Zipf {
  /** cdf[r] = P(rank <= r); cdf[n - 1] = 1. */
  private readonly cdf: Float64Array;

  constructor(
    readonly n: number,
    alpha: number,
  ) {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`zipf: n must be a positive integer, got ${n}`);
    this.cdf = new Float64Array(n);
    let sum = 0;
    for (let r = 0; r < n; r++) {
      sum += 1 / Math.pow(r + 1, alpha);
      this.cdf[r] = sum;
    }
    for (let r = 0; r < n; r++) this.cdf[r] /= sum;
    this.cdf[n - 1] = 1;
  }

  /** Probability of rank r. */
  probability(r: number): number {
    return r === 0 ? this.cdf[0] : this.cdf[r] - this.cdf[r - 1];
  }

  /** A rank drawn from the distribution (binary search for the first cdf >= u). */
  sample(prng: Prng): number {
    const u = prng.next();
    let lo = 0;
    let hi = this.n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.cdf[mid] < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
