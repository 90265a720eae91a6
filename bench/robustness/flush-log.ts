/**
 * The flush_all requests the fuzzer and the soak send, and when each may have emptied the cache.
 * A flush is known only by when it was written and when its reply (or the reply to the request
 * after it) came back; a delayed one takes effect about `delay` seconds later. memcached counts
 * time in whole seconds (its `flush_all 1` acts at once, `flush_all 2` within a second and also
 * drops what is stored in that second), so a delayed flush's window is widened by SLACK_MS on
 * both sides. Judging a read then asks: could a flush have acted between two instants, or must
 * one have?
 */
import { stats } from "../lib/memcache.ts";
import { REPLY_DEADLINE_MS } from "./client.ts";

export interface FlushForm {
  /** The command line, without CRLF. */
  readonly line: string;
  readonly delaySeconds: number;
  readonly noreply: boolean;
}

/** Immediate and delayed forms interleaved, so a soak taking them in turn soon sends each kind. */
export const FLUSH_FORMS: readonly FlushForm[] = [
  { line: "flush_all", delaySeconds: 0, noreply: false },
  { line: "flush_all 1", delaySeconds: 1, noreply: false },
  { line: "flush_all 0", delaySeconds: 0, noreply: false },
  { line: "flush_all 2 noreply", delaySeconds: 2, noreply: true },
  { line: "flush_all noreply", delaySeconds: 0, noreply: true },
  { line: "flush_all 2", delaySeconds: 2, noreply: false },
  { line: "flush_all 0 noreply", delaySeconds: 0, noreply: true },
];

const SLACK_MS: number = 2000;

/** Wall-clock milliseconds between which the flush acted (if it acted at all). */
export interface FlushWindow {
  readonly from: number;
  /** Infinity until the flush is known to have been read by the server. */
  to: number;
  readonly form: FlushForm;
  readonly sentAt: number;
  /** Who sent it (connection, batch), for failure messages. */
  readonly by: string;
}

export class FlushLog {
  /** Flushes sent, by kind. */
  readonly sent = { immediate: 0, delayed: 0, noreply: 0 };
  /** The server's curr_items just before each flush was sent (when stats answered). */
  readonly itemsBefore: number[] = [];
  /** In the order the flushes were sent. */
  private readonly windows: FlushWindow[] = [];

  /** The form after the last one sent, in FLUSH_FORMS order. */
  nextForm(): FlushForm {
    return FLUSH_FORMS[(this.sent.immediate + this.sent.delayed) % FLUSH_FORMS.length];
  }

  /** Records a flush written at `sentAt`; it may act at any time until answered() is called. */
  begin(form: FlushForm, sentAt: number, by: string): FlushWindow {
    this.sent[form.delaySeconds > 0 ? "delayed" : "immediate"]++;
    if (form.noreply) this.sent.noreply++;
    const slack: number = form.delaySeconds > 0 ? SLACK_MS : 0;
    const window: FlushWindow = { from: sentAt + form.delaySeconds * 1000 - slack, to: Infinity, form, sentAt, by };
    this.windows.push(window);
    return window;
  }

  /** The server has read the flush by `at` (its reply, or a later request's, arrived). */
  answered(window: FlushWindow, at: number): void {
    window.to = at + window.form.delaySeconds * 1000 + (window.form.delaySeconds > 0 ? SLACK_MS : 0);
  }

  /** The flushes that may have acted after `after` and before `before`: a key stored in between may be gone. */
  mayHaveActed(after: number, before: number): FlushWindow[] {
    return this.windows.filter((w) => w.to >= after && w.from <= before);
  }

  /** The flushes that may have acted in the `ms` before now, for a message about a server that stopped answering. */
  recent(ms: number): string {
    const now: number = Date.now();
    const suspects: string[] = this.mayHaveActed(now - ms, now).map((w) => `"${w.form.line}" from ${w.by}, sent ${now - w.sentAt} ms ago`);
    return `flushes that may have acted in the last ${ms} ms: ${suspects.length > 0 ? suspects.join("; ") : "none"}`;
  }

  /**
   * A flush that certainly acted after `after` and before `before`, if any: a key last written or
   * seen before `after` and read after `before` must be gone. Needs windows that do not overlap
   * (flushes sent one at a time, each only after quietAfter()), so the scan stops at the first
   * window ending before `after`.
   */
  flushWithin(after: number, before: number): FlushWindow | undefined {
    for (let i = this.windows.length - 1; i >= 0 && this.windows[i].to >= after; i--) {
      if (this.windows[i].from > after && this.windows[i].to < before) return this.windows[i];
    }
    return undefined;
  }

  /** When every flush sent so far has acted (Infinity while one is unanswered; 0 when none was sent). */
  quietAfter(): number {
    return this.windows.reduce((latest, w) => Math.max(latest, w.to), 0);
  }

  /** Waits until every flush sent (and answered) has acted, so the run's last checks see them. */
  async waitUntilActed(): Promise<void> {
    const wait: number = this.quietAfter() - Date.now();
    if (wait > 0 && Number.isFinite(wait)) await Bun.sleep(wait);
  }

  /** Forgets the windows that ended before `before` (no later question looks that far back). */
  forget(before: number): void {
    for (let i = this.windows.length - 1; i >= 0; i--) if (this.windows[i].to < before) this.windows.splice(i, 1);
  }

  /** One line for the reports: how many flushes of each kind, and how full the cache was before them. */
  summary(): string {
    const items: number[] = [...this.itemsBefore].sort((a, b) => a - b);
    const spread: string = items.length === 0 ? "not read" : `min ${items[0]}, median ${items[items.length >> 1]}, max ${items[items.length - 1]}`;
    return `${this.sent.immediate} immediate, ${this.sent.delayed} delayed (${this.sent.noreply} noreply); items before them: ${spread}`;
  }

  /** Notes the server's item count before a flush; a server that does not answer is left to the liveness checks. */
  async noteItems(port: number): Promise<void> {
    try {
      this.itemsBefore.push(Number((await stats(port, REPLY_DEADLINE_MS)).get("curr_items") ?? 0));
    } catch {
      // no answer in time: whichever request is waiting will report it
    }
  }
}
