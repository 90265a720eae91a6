/**
 * A tiny application: user profiles come from a slow source (a database, an HTTP API) and are
 * cached in memcached through npm's `memcached` client, which is what this example tests.
 */
import Memcached from "memcached";

export interface Profile {
  readonly id: string;
  readonly name: string;
}

/** The slow source of truth. */
export type LookupProfile = (id: string) => Promise<Profile>;

/** The part of the `memcached` client used here (the package ships no types). */
interface CacheClient {
  get(key: string, cb: (err: Error | undefined, data: string | undefined) => void): void;
  set(key: string, value: string, lifetimeSeconds: number, cb: (err: Error | undefined) => void): void;
  end(): void;
}

export class ProfileService implements Disposable {
  private readonly cache: CacheClient;

  /** `servers` is memcached's "host:port" list; profiles stay cached for `ttlSeconds`. */
  constructor(
    servers: string,
    private readonly lookup: LookupProfile,
    private readonly ttlSeconds = 300,
  ) {
    this.cache = new Memcached(servers, { retries: 0, timeout: 1000 }) as CacheClient;
  }

  async get(id: string): Promise<Profile> {
    const key = `profile:${id}`;
    const cached = await new Promise<string | undefined>((resolve, reject) => this.cache.get(key, (err, data) => (err ? reject(err) : resolve(data))));
    if (cached !== undefined) return JSON.parse(cached) as Profile;
    const profile = await this.lookup(id);
    await new Promise<void>((resolve, reject) => this.cache.set(key, JSON.stringify(profile), this.ttlSeconds, (err) => (err ? reject(err) : resolve())));
    return profile;
  }

  [Symbol.dispose](): void {
    this.cache.end();
  }
}
