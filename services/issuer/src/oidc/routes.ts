/** The engine's endpoint paths, fixed here so the CORS policy and the engine agree. */
export const routes = {
  authorization: '/auth',
  end_session: '/session/end',
  introspection: '/token/introspection',
  jwks: '/jwks',
  revocation: '/token/revocation',
  token: '/token',
  userinfo: '/me',
} as const;

export const OIDC_DISCOVERY_PATH = '/.well-known/openid-configuration';
export const OAUTH_METADATA_PATH = '/.well-known/oauth-authorization-server';
/**
 * The JWKS at the well-known place some verifiers look for it without reading discovery
 * (get-jwks, Fastify's usual helper, for one): the engine's `jwks_uri` document, served as
 * that path (app.ts).
 */
export const JWKS_ALIAS_PATH = '/.well-known/jwks.json';

/** The engine's JSON endpoints: every answer they give, an error included, is JSON, never a page. */
export const JSON_PATHS: ReadonlySet<string> = new Set([
  OIDC_DISCOVERY_PATH,
  OAUTH_METADATA_PATH,
  routes.jwks,
  JWKS_ALIAS_PATH,
  routes.token,
  routes.introspection,
  routes.revocation,
  routes.userinfo,
]);

/**
 * Endpoints browsers may call cross-origin from an allowlisted origin (RFC 9700 §2.6): the
 * JSON endpoints, never the authorization endpoint or an HTML page.
 */
export const CORS_PATHS: ReadonlySet<string> = JSON_PATHS;
