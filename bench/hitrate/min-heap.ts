/**
 * A binary min-heap of (priority, key, tag) entries in plain arrays, for the models' lazy queues:
 * an entry goes stale when its key changes, and the model skips it when it comes to the top (the
 * tag tells it so: a version, or nothing when the priority itself does).
 */
export class MinHeap {
  private readonly priority: number[] = [];
  private readonly key: number[] = [];
  private readonly tag: number[] = [];

  get size(): number {
    return this.priority.length;
  }

  topPriority(): number {
    return this.priority[0];
  }

  topKey(): number {
    return this.key[0];
  }

  topTag(): number {
    return this.tag[0];
  }

  push(p: number, k: number, t = 0): void {
    let i = this.priority.length;
    this.priority.push(p);
    this.key.push(k);
    this.tag.push(t);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.priority[parent] <= p) break;
      this.set(i, this.priority[parent], this.key[parent], this.tag[parent]);
      i = parent;
    }
    this.set(i, p, k, t);
  }

  pop(): void {
    const last = this.priority.length - 1;
    const p = this.priority[last];
    const k = this.key[last];
    const t = this.tag[last];
    this.priority.pop();
    this.key.pop();
    this.tag.pop();
    if (last === 0) return;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= last) break;
      if (child + 1 < last && this.priority[child + 1] < this.priority[child]) child++;
      if (this.priority[child] >= p) break;
      this.set(i, this.priority[child], this.key[child], this.tag[child]);
      i = child;
    }
    this.set(i, p, k, t);
  }

  private set(i: number, p: number, k: number, t: number): void {
    this.priority[i] = p;
    this.key[i] = k;
    this.tag[i] = t;
  }
}
