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

export function corsPolicy(origins: readonly string[]): CorsPolicy {
  const allowed = new Set(origins);
  const granted = (origin: string | undefined, path: string) => origin !== undefined && allowed.has(origin) && CORS_PATHS.has(path);
  const addHeaders = cors({ origin: [...allowed], maxAge: 3600, exposedHeaders: ['WWW-Authenticate'] });
  return {
    grant(req, res, path, next) {
      const origin = req.headers.origin;
      if (granted(origin, path)) {
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
      const origin = ctx.get('origin');
      if (granted(origin === '' ? undefined : origin, ctx.path)) return;
      for (const name of Object.keys(ctx.response.headers)) {
        if (name.startsWith('access-control-')) ctx.remove(name);
      }
    },
  };
}
