// Bun 1.4.5's Bun.listen takes reusePort (SO_REUSEPORT: several threads accept on one port, the
// kernel spreading connections over them), but bun-types 1.4.5 declares it only for connect.
import "bun";

declare module "bun" {
  interface TCPSocketListenOptions<Data = undefined> {
    reusePort?: boolean;
  }
}
