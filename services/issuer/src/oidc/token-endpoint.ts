import type { KoaContextWithOIDC } from 'oidc-provider';

import { TOKEN_EXCHANGE } from '../domain/clients.js';
import type { IssuerMetrics } from '../metrics.js';
import type { KoaMiddleware } from './koa.js';
import { routes } from './routes.js';

/** The grant types the token endpoint serves (RFC 6749 §4, plus Sigil's password grant: grants/password.ts). */
const KNOWN_GRANT_TYPES: ReadonlySet<string> = new Set(['client_credentials', 'password', 'authorization_code', 'refresh_token', 'unknown']);

/**
 * Counts token requests (RFC 6749 §3.2) as they were answered, by grant type and outcome.
 * Registered first, so it counts once every rewrite of the answer (errors.ts) is done.
 */
export function countTokenRequests(metrics: IssuerMetrics): KoaMiddleware {
  return async (ctx, next) => {
    await next();
    if (ctx.path !== routes.token || ctx.method !== 'POST') return;
    const params = 'oidc' in ctx ? (ctx as KoaContextWithOIDC).oidc.params : undefined;
    const grantType = typeof params?.['grant_type'] === 'string' ? params['grant_type'] : 'unknown';
    const error = (ctx.body as { error?: unknown } | undefined)?.error;
    metrics.tokenRequests.inc({
      grant_type: KNOWN_GRANT_TYPES.has(grantType) || grantType === TOKEN_EXCHANGE ? grantType : 'other',
      outcome: ctx.status < 400 ? 'success' : typeof error === 'string' ? error.slice(0, 40) : 'error',
    });
  };
}
