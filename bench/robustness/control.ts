/**
 * A key/value written at the start of a run and read back whenever asked: the server must keep it
 * intact, and may lose it only to a flush_all that could have acted since it was stored (it is
 * then stored again).
 */
import { ascii, concat, latin1 } from "./bytes.ts";
import { McClient, type Retrieval } from "./client.ts";
import type { FlushLog } from "./flush-log.ts";

export class ControlKey {
  readonly failures: string[] = [];
  checks: number = 0;
  /** Misses a flush explained (the key was stored again). */
  missesAfterFlush: number = 0;
  private readonly value: Uint8Array;
  /** When the last store was sent. */
  private storedAt: number = 0;
  /** Checks run one at a time (workers share this key), so each judges a miss against its own store. */
  private last: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly client: McClient,
    private readonly key: string,
    private readonly flags: number,
    private readonly flushes: FlushLog,
  ) {
    // Bytes a parser could trip on: CRLF, LF, NUL, a fake command and high bytes.
    this.value = ascii(`control\r\nget ${key}\r\n\n\u0000END\r\n${"\u00ff".repeat(100)}`);
  }

  static async create(port: number, key: string, flushes: FlushLog): Promise<ControlKey> {
    const control = new ControlKey(await McClient.connect(port), key, 4242, flushes);
    const reply: string = await control.store();
    if (reply !== "STORED") throw new Error(`cannot store the control key: ${reply}`);
    return control;
  }

  /**
   * Reads the key back; a wrong value, or a miss no flush explains, is recorded in `failures`.
   * Throws when the server does not answer within the client's deadline (the liveness check).
   */
  check(): Promise<boolean> {
    const run: Promise<boolean> = this.last.then(() => this.checkNow());
    this.last = run.catch(() => undefined);
    return run;
  }

  close(): void {
    this.client.close();
  }

  private async checkNow(): Promise<boolean> {
    this.checks++;
    const reply: Retrieval = await this.client.retrieve(`get ${this.key}\r\n`);
    if (reply.items?.length === 0 && this.flushes.mayHaveActed(this.storedAt, Date.now()).length > 0) {
      this.missesAfterFlush++;
      const stored: string = await this.store();
      if (stored !== "STORED") this.failures.push(`check ${this.checks}: storing the key again after a flush got ${stored}`);
      return stored === "STORED";
    }
    const problem: string | undefined = this.problemWith(reply);
    if (problem !== undefined) this.failures.push(`check ${this.checks}: ${problem}`);
    return problem === undefined;
  }

  /** Stores the key; returns the reply. */
  private async store(): Promise<string> {
    this.storedAt = Date.now();
    this.flushes.forget(this.storedAt);
    return this.client.line(concat([ascii(`set ${this.key} ${this.flags} 0 ${this.value.length}\r\n`), this.value, ascii("\r\n")]));
  }

  private problemWith(reply: Retrieval): string | undefined {
    if (reply.error !== undefined) return `got ${JSON.stringify(reply.error)}`;
    if (reply.items.length !== 1) return `got ${reply.items.length} items`;
    const [item] = reply.items;
    if (item.key !== this.key || item.flags !== this.flags || latin1(item.value) !== latin1(this.value)) {
      return `got ${item.key} flags ${item.flags} value ${JSON.stringify(latin1(item.value).slice(0, 80))}`;
    }
    return undefined;
  }
}
