/**
 * memcached-compatible ASCII authentication (--auth-file): the file holds `user:password` lines;
 * a client authenticates with `set <any key> <flags> <exptime> <bytes>` whose data is
 * `user password`. Until then every other command gets `CLIENT_ERROR unauthenticated`.
 */
import { readFileSync } from "node:fs";

export class AuthTable {
  private readonly credentials: Set<string>;

  constructor(fileText: string) {
    this.credentials = new Set();
    for (const raw of fileText.split("\n")) {
      const line = raw.trim();
      if (line === "" || line.startsWith("#")) continue;
      const colon = line.indexOf(":");
      if (colon <= 0) throw new Error("auth file: every line must be user:password");
      this.credentials.add(`${line.slice(0, colon)} ${line.slice(colon + 1)}`);
    }
    if (this.credentials.size === 0) throw new Error("auth file has no user:password line");
  }

  static fromFile(path: string): AuthTable {
    return new AuthTable(readFileSync(path, "utf8"));
  }

  /** `data` is the set command's data block: "user password". */
  check(data: Uint8Array, off: number, len: number): boolean {
    let text = "";
    for (let i = 0; i < len; i++) text += String.fromCharCode(data[off + i]);
    return this.credentials.has(text.trim());
  }
}
