import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';

import cors from 'cors';
import express, { type ErrorRequestHandler, type RequestHandler } from 'express';
import helmet from 'helmet';
import type { Knex } from 'knex';

import type { Config } from './config.js';
import type { TrustProxy } from './http/client-address.js';
import type { Logger } from './logger.js';
import type { IssuerMetrics } from './metrics.js';
import { CORS_PATHS, OAUTH_METADATA_PATH, OIDC_DISCOVERY_PATH, routes } from './oidc/routes.js';

export interface AppDependencies {
  readonly config: Config;
  /** The OAuth engine's request handler (oidc-provider's callback). */
  readonly oidc: (req: IncomingMessage, res: ServerResponse) => unknown;
  readonly db: Knex;
  readonly logger: Logger;
  /** The login and consent pages (served before the engine). */
  readonly interactions: RequestHandler;
  readonly metrics: IssuerMetrics;
  /** Which proxies' X-Forwarded-For counts (TRUST_PROXY), for express's `req.ip`. */
  readonly trust: TrustProxy;
}

/** The engine's own endpoints: the engine answers them without express in front (see `createApp`). */
const ENGINE_PATHS: ReadonlySet<string> = new Set([...Object.values(routes), OIDC_DISCOVERY_PATH]);

/** The path of a request target, without its query (`/token?x` → `/token`). */
function pathOf(url: string | undefined): string {
  if (url === undefined) return '/';
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

/** Continues with the request, or ends it with the error a middleware passed. */
type Continue = (error?: unknown) => void;

/**
 * CORS only from `CORS_ORIGINS`, only on the endpoints in CORS_PATHS (S8). The engine adds
 * permissive CORS headers of its own when none are present, so on every other request
 * `Access-Control-*` headers are dropped before they are written.
 */
function corsPolicy(origins: readonly string[]) {
  const allowed = new Set(origins);
  const grant = cors({ origin: [...allowed], maxAge: 3600, exposedHeaders: ['WWW-Authenticate'] });
  return (req: IncomingMessage, res: ServerResponse, path: string, next: Continue): void => {
    const origin = req.headers.origin;
    if (origin !== undefined && allowed.has(origin) && CORS_PATHS.has(path)) {
      grant(req, res, next);
      return;
    }
    const setHeader = res.setHeader.bind(res);
    res.setHeader = (name, value) => (name.toLowerCase().startsWith('access-control-') ? res : setHeader(name, value));
    if (req.method === 'OPTIONS' && origin !== undefined) {
      res.statusCode = 204;
      res.end();
      return;
    }
    next();
  };
}

function readiness(db: Knex): RequestHandler {
  return async (_req, res) => {
    try {
      await db.raw('select 1').timeout(2000, { cancel: true });
      res.json({ status: 'ready' });
    } catch {
      res.status(503).json({ status: 'unavailable', error_description: 'database unreachable' });
    }
  };
}

/** Errors from Sigil's own routes: RFC 6749-shaped JSON, never a stack. */
function errorHandler(logger: Logger): ErrorRequestHandler {
  return (error: unknown, _req, res, _next) => {
    const status = (error as { status?: unknown }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      res.status(status).json({ error: 'invalid_request', error_description: 'the request could not be processed' });
      return;
    }
    logger.error({ err: error }, 'unhandled error');
    res.status(500).json({ error: 'server_error', error_description: 'an unexpected error occurred' });
  };
}

/**
 * The issuer's request listener. Every request gets the security headers, is counted in the
 * metrics and goes through the CORS policy; then the engine's endpoints (token, JWKS,
 * discovery…) go straight to the engine, and everything else (health, metrics, the login and
 * consent pages, unknown paths) to express. Express costs about a fifth of a millisecond per
 * request (it re-parents every request and response object, which then slows every property
 * read after it), a quarter of a client-credentials token's CPU: the engine speaks plain
 * node:http and needs none of it.
 */
export function createApp({ config, oidc, db, logger, interactions, metrics, trust }: AppDependencies): RequestListener {
  const securityHeaders = helmet({
    contentSecurityPolicy: {
      directives: {
        // S9: pages are never framed
        frameAncestors: ["'none'"],
        // on an http issuer (development) this would send browsers to https
        upgradeInsecureRequests: config.issuer.startsWith('https:') ? [] : null,
      },
    },
    // HSTS only makes sense when the issuer is served over https
    strictTransportSecurity: config.issuer.startsWith('https:'),
  });
  const cors = corsPolicy(config.corsOrigins);
  const app = sigilRoutes({ oidc, db, logger, interactions, metrics, trust });

  /** What cannot be answered otherwise (a failure in this listener itself): a bare JSON 500, never a stack. */
  const fail = (res: ServerResponse, error: unknown) => {
    logger.error({ err: error }, 'unhandled error');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.statusCode = 500;
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.end(JSON.stringify({ error: 'server_error', error_description: 'an unexpected error occurred' }));
  };

  return (req, res) => {
    try {
      const path = pathOf(req.url);
      metrics.observe(req, res, path);
      securityHeaders(req, res, (headersError?: unknown) => {
        if (headersError) return fail(res, headersError);
        cors(req, res, path, (corsError?: unknown) => {
          if (corsError) return fail(res, corsError);
          // RFC 8414 metadata: the engine's OpenID discovery document is a superset of it
          if (isMetadataAlias(path) && (req.method === 'GET' || req.method === 'HEAD')) {
            req.url = OIDC_DISCOVERY_PATH;
            void oidc(req, res);
          } else if (ENGINE_PATHS.has(path)) {
            void oidc(req, res);
          } else {
            void app(req, res);
          }
          return undefined;
        });
        return undefined;
      });
    } catch (error) {
      fail(res, error);
    }
  };
}

/** The RFC 8414 metadata path as express routes matched it: in any case, with or without a trailing slash. */
function isMetadataAlias(path: string): boolean {
  const length = OAUTH_METADATA_PATH.length;
  if (path.length !== length && path.length !== length + 1) return false;
  const bare = path.length === length + 1 && path.endsWith('/') ? path.slice(0, length) : path;
  return bare.toLowerCase() === OAUTH_METADATA_PATH;
}

/** Sigil's own routes, behind the security headers, metrics and CORS policy of `createApp`. */
function sigilRoutes({ oidc, db, logger, interactions, metrics, trust }: Omit<AppDependencies, 'config'>): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', trust);

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', readiness(db));
  // Prometheus: counters and durations only (no tokens, names or addresses)
  app.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  app.use(interactions);

  // after every express route: the engine answers everything it is given (ENGINE-NOTES)
  app.use((req, res) => {
    void oidc(req, res);
  });
  app.use(errorHandler(logger));
  return app;
}
