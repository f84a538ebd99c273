import type { IncomingMessage, ServerResponse } from 'node:http';

import cors from 'cors';
import express, { type ErrorRequestHandler, type RequestHandler } from 'express';
import helmet from 'helmet';
import type { Knex } from 'knex';

import type { Config } from './config.js';
import type { Logger } from './logger.js';
import type { IssuerMetrics } from './metrics.js';
import { CORS_PATHS, OAUTH_METADATA_PATH, OIDC_DISCOVERY_PATH } from './oidc/routes.js';

export interface AppDependencies {
  readonly config: Config;
  /** The OAuth engine's request handler (oidc-provider's callback). */
  readonly oidc: (req: IncomingMessage, res: ServerResponse) => unknown;
  readonly db: Knex;
  readonly logger: Logger;
  /** The login and consent pages (served before the engine). */
  readonly interactions: RequestHandler;
  readonly metrics: IssuerMetrics;
}

/**
 * CORS only from `CORS_ORIGINS`, only on the endpoints in CORS_PATHS (S8). The engine adds
 * permissive CORS headers of its own when none are present, so on every other request
 * `Access-Control-*` headers are dropped before they are written.
 */
function corsPolicy(origins: readonly string[]): RequestHandler {
  const allowed = new Set(origins);
  const grant = cors({ origin: [...allowed], maxAge: 3600, exposedHeaders: ['WWW-Authenticate'] });
  return (req, res, next) => {
    const origin = req.headers.origin;
    if (origin !== undefined && allowed.has(origin) && CORS_PATHS.has(req.path)) {
      grant(req, res, next);
      return;
    }
    const setHeader = res.setHeader.bind(res);
    res.setHeader = (name, value) =>
      name.toLowerCase().startsWith('access-control-') ? res : setHeader(name, value);
    if (req.method === 'OPTIONS' && origin !== undefined) {
      res.status(204).end();
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

export function createApp({ config, oidc, db, logger, interactions, metrics }: AppDependencies): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.trustProxy);

  app.use(
    helmet({
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
    }),
  );
  app.use(metrics.middleware);
  app.use(corsPolicy(config.corsOrigins));

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', readiness(db));
  // Prometheus: counters and durations only (no tokens, names or addresses)
  app.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  app.use(interactions);

  // RFC 8414 metadata: the engine's OpenID discovery document is a superset of it
  app.get(OAUTH_METADATA_PATH, (req, _res, next) => {
    req.url = OIDC_DISCOVERY_PATH;
    next();
  });

  // after every express route: the engine answers everything it is given (ENGINE-NOTES)
  app.use((req, res) => {
    void oidc(req, res);
  });
  app.use(errorHandler(logger));
  return app;
}
