import { OAUTH_METADATA_PATH } from './routes.js';

/**
 * Discovery. The engine serves OpenID Connect Discovery 1.0 at OIDC_DISCOVERY_PATH; its
 * document is a superset of RFC 8414's authorization server metadata, so the RFC 8414 path
 * (§3, `/.well-known/oauth-authorization-server`) is served by the same document.
 */

/** The RFC 8414 metadata path as express routes matched it: in any case, with or without a trailing slash. */
export function isMetadataAlias(path: string): boolean {
  const length = OAUTH_METADATA_PATH.length;
  if (path.length !== length && path.length !== length + 1) return false;
  const bare = path.length === length + 1 && path.endsWith('/') ? path.slice(0, length) : path;
  return bare.toLowerCase() === OAUTH_METADATA_PATH;
}
