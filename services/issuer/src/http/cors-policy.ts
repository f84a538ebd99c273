import type { IncomingMessage, ServerResponse } from 'node:http';

import cors from 'cors';

import type { KoaMiddleware } from '../oidc/koa.js';
import { CORS_PATHS } from '../oidc/routes.js';

/** Continues with the request, or ends it with the error a middleware passed. */
export type Continue = (error?: unknown) => void;

/**
 * CORS only from `CORS_ORIGINS`, only on the endpoints in CORS_PATHS (RFC 9700 §2.6): never on
 * the authorization endpoint or an HTML page. Two halves, one rule:
 *
 * - `grant`, in the request listener, answers a granted request's preflight and adds the CORS
 *   headers to a granted request; any other preflight ends with a bare 204;
 * - `withholdEngineHeaders`, an engine middleware, removes the permissive CORS headers the
 *   engine adds of its own (on discovery, JWKS, token…) to every request that was not granted.
 */
export interface CorsPolicy {
  grant(req: IncomingMessage, res: ServerResponse, path: string, next: Continue): void;
  readonly withholdEngineHeaders: KoaMiddleware;
}

/** The CORS response headers the engine sets (it may remove `Access-Control-Allow-Origin` again, leaving the others). */
const ENGINE_CORS_HEADERS = ['access-control-allow-origin', 'access-control-expose-headers', 'access-control-max-age', 'access-control-allow-methods', 'access-control-allow-headers'];

export function corsPolicy(origins: readonly string[]): CorsPolicy {
  const allowed = new Set(origins);
  const addHeaders = cors({ origin: [...allowed], maxAge: 3600, exposedHeaders: ['WWW-Authenticate'] });
  /** The requests `grant` let through with CORS headers: decided once, on the path the client asked for. */
  const grantedRequests = new WeakSet<IncomingMessage>();
  return {
    grant(req, res, path, next) {
      const origin = req.headers.origin;
      if (origin !== undefined && allowed.has(origin) && CORS_PATHS.has(path)) {
        grantedRequests.add(req);
        addHeaders(req, res, next);
      } else if (req.method === 'OPTIONS' && origin !== undefined) {
        res.statusCode = 204;
        res.end();
      } else {
        next();
      }
    },
    withholdEngineHeaders: async (ctx, next) => {
      await next();
      if (grantedRequests.has(ctx.req)) return;
      for (const name of ENGINE_CORS_HEADERS) ctx.remove(name);
    },
  };
}
