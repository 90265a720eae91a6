// npm's `memcached` ships no types and @types/memcached is not a dependency: type it as `any`
// here; profiles.ts narrows it to the calls it makes (CacheClient).
declare module "memcached";
