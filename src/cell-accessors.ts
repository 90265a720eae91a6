/**
 * Named number properties backed by the cells of a shared Float64Array (`counters.cmd_get++`
 * reads and writes its cell), for counters that every thread must see: stats.ts's per-thread
 * Counters and the store's StoreCounters.
 */
export function defineCellAccessors(prototype: { readonly cells: Float64Array }, cellsByName: Iterable<readonly [string, number]>): void {
  for (const [name, cell] of cellsByName) {
    Object.defineProperty(prototype, name, {
      get(this: { readonly cells: Float64Array }) {
        return this.cells[cell];
      },
      set(this: { readonly cells: Float64Array }, value: number) {
        this.cells[cell] = value;
      },
    });
  }
}
