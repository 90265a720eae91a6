/** A key/value written once at the start of a run and read back whenever asked: the server must keep it. */
import { ascii, concat, latin1 } from "./bytes.ts";
import { McClient, type Retrieval } from "./client.ts";

export class ControlKey {
  readonly failures: string[] = [];
  checks: number = 0;
  private readonly value: Uint8Array;

  private constructor(
    private readonly client: McClient,
    private readonly key: string,
    private readonly flags: number,
  ) {
    // Bytes a parser could trip on: CRLF, LF, NUL, a fake command and high bytes.
    this.value = ascii(`control\r\nget ${key}\r\n\n\u0000END\r\n${"\u00ff".repeat(100)}`);
  }

  static async create(port: number, key: string): Promise<ControlKey> {
    const control = new ControlKey(await McClient.connect(port), key, 4242);
    const reply: string = await control.client.line(concat([ascii(`set ${key} ${control.flags} 0 ${control.value.length}\r\n`), control.value, ascii("\r\n")]));
    if (reply !== "STORED") throw new Error(`cannot store the control key: ${reply}`);
    return control;
  }

  /** Reads the key back; a wrong or missing value (or no reply) is recorded in `failures`. */
  async check(): Promise<boolean> {
    this.checks++;
    let problem: string | undefined;
    try {
      problem = this.problemWith(await this.client.retrieve(`get ${this.key}\r\n`));
    } catch (error) {
      problem = (error as Error).message;
    }
    if (problem !== undefined) this.failures.push(`check ${this.checks}: ${problem}`);
    return problem === undefined;
  }

  close(): void {
    this.client.close();
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
