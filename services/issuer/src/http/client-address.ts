import type { IncomingMessage } from 'node:http';

import proxyaddr from 'proxy-addr';

/** Whether the hop at `address`, `hops` away from the server, is a proxy whose X-Forwarded-For counts. */
export type TrustProxy = (address: string, hops: number) => boolean;

/**
 * The trust rule of `TRUST_PROXY`, with express's meaning of its `trust proxy` setting:
 * `false` trusts no proxy (the socket's peer is the client), `true` every one, a number that
 * many hops, a string a comma-separated list of addresses, subnets or the names `loopback`,
 * `linklocal` and `uniquelocal`. Express is given this same function, so that the login
 * form and the engine's endpoints see one client address.
 *
 * @example
 * ```ts
 * const trust = trustProxy(config.trustProxy);
 * clientAddress(req, trust); // '203.0.113.7'
 * ```
 */
export function trustProxy(setting: boolean | number | string): TrustProxy {
  if (setting === true) return () => true;
  if (setting === false) return () => false;
  if (typeof setting === 'number') return (_address, hops) => hops < setting;
  return proxyaddr.compile(setting.split(',').map((entry) => entry.trim()));
}

/**
 * The client's address: the nearest untrusted hop of the socket's peer and X-Forwarded-For
 * (`''` when the socket is already gone and there is none).
 */
export function clientAddress(req: IncomingMessage, trust: TrustProxy): string {
  // typed string, but undefined for a socket that has closed
  return (proxyaddr(req, trust) as string | undefined) ?? '';
}
