import pkg from "../package.json" with { type: "json" };

/** The package version; build.ts may define CACHEISMO_COMMIT at compile time. */
export const VERSION: string = pkg.version;

/**
 * What `version` answers. Clients and test tools pick protocol features from the memcached
 * version they see, so lead with the memcached release whose text protocol we follow.
 */
export const PROTOCOL_VERSION = `1.6.21-cacheismo-${VERSION}`;

declare const CACHEISMO_COMMIT: string | undefined;
export const COMMIT: string = typeof CACHEISMO_COMMIT === "string" ? CACHEISMO_COMMIT : "dev";
