/** Every fixed reply, encoded once. Strings as memcached 1.6 sends them (protocol.txt). */
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

export const R_STORED = enc("STORED\r\n");
export const R_NOT_STORED = enc("NOT_STORED\r\n");
export const R_EXISTS = enc("EXISTS\r\n");
export const R_NOT_FOUND = enc("NOT_FOUND\r\n");
export const R_DELETED = enc("DELETED\r\n");
export const R_TOUCHED = enc("TOUCHED\r\n");
export const R_END = enc("END\r\n");
export const R_OK = enc("OK\r\n");
export const R_RESET = enc("RESET\r\n");
export const R_ERROR = enc("ERROR\r\n");
export const R_VALUE = enc("VALUE ");
export const R_CRLF = enc("\r\n");
export const R_BAD_FORMAT = enc("CLIENT_ERROR bad command line format\r\n");
export const R_BAD_DELETE = enc("CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n");
export const R_BAD_CHUNK = enc("CLIENT_ERROR bad data chunk\r\n");
export const R_NON_NUMERIC = enc("CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
export const R_BAD_DELTA = enc("CLIENT_ERROR invalid numeric delta argument\r\n");
export const R_BAD_EXPTIME = enc("CLIENT_ERROR invalid exptime argument\r\n");
export const R_TOO_LARGE = enc("SERVER_ERROR object too large for cache\r\n");
export const R_NO_MEMORY = enc("SERVER_ERROR out of memory storing object\r\n");
export const R_SHUTDOWN_DISABLED = enc("ERROR: shutdown not enabled\r\n");
export const R_FLUSH_DISABLED = enc("CLIENT_ERROR flush_all not allowed\r\n");
export const R_UNAUTHENTICATED = enc("CLIENT_ERROR unauthenticated\r\n");
export const R_AUTH_FAILED = enc("CLIENT_ERROR authentication failure\r\n");
export const R_TOO_MANY_CONNECTIONS = enc("ERROR Too many open connections\r\n");
