import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';

import express, { type ErrorRequestHandler, type RequestHandler } from 'express';
import helmet from 'helmet';

import { ADMIN_API_PATH, isAdminApiPath } from './admin/http/router.js';
import type { Config } from './config.js';
import type { TrustProxy } from './http/client-address.js';
import type { CorsPolicy } from './http/cors-policy.js';
import { jwksMaxAge } from './keys/lifecycle.js';
import { BODY_LIMIT, inspectBody, inspectHeaders, inspectTarget, isPagePath } from './http/input-gate.js';
import { readBodyAhead } from './http/read-body.js';
import { REVOCATION_FEED_PATH } from './http/revocation-feed.js';
import type { Logger } from './logger.js';
import type { IssuerMetrics } from './metrics.js';
import { isMetadataAlias } from './oidc/discovery.js';
import { sendErrorPage } from './oidc/error-page.js';
import { errorBody, logUnavailable, NOT_FOUND, RETRY_AFTER_SECONDS, SERVER_ERROR, sendError, sendUnavailable } from './oidc/errors.js';
import { JSON_PATHS, JWKS_ALIAS_PATH, OIDC_DISCOVERY_PATH, routes } from './oidc/routes.js';
import { isDatabaseUnavailable } from './storage/unavailable.js';

export interface AppDependencies {
  readonly config: Config;
  /** The OAuth engine's request handler (oidc-provider's callback). */
  readonly oidc: (req: IncomingMessage, res: ServerResponse) => unknown;
  /** Whether the database answers within the given time (readiness). */
  readonly databaseReachable: (timeoutMs: number) => Promise<boolean>;
  readonly logger: Logger;
  /** The login and consent pages (served before the engine). */
  readonly interactions: RequestHandler;
  readonly metrics: IssuerMetrics;
  /** Which proxies' X-Forwarded-For counts (TRUST_PROXY), for express's `req.ip`. */
  readonly trust: TrustProxy;
  readonly cors: CorsPolicy;
  /** `GET` and `POST /token/revocations` (http/revocation-feed.ts). */
  readonly revocationFeed: readonly RequestHandler[];
  /** The admin API, served under ADMIN_API_PATH (admin/http/router.ts). */
  readonly adminApi: RequestHandler;
}

/** The engine's own endpoints. */
const ENGINE_PATHS: ReadonlySet<string> = new Set([...Object.values(routes), OIDC_DISCOVERY_PATH]);

type Destination = 'engine' | 'express';

/**
 * Where each request goes, first match wins. The engine's own endpoints (token, JWKS,
 * discovery…) go straight to the engine, which speaks plain node:http; everything else
 * (health, metrics, the login and consent pages, unknown paths) to express. Express
 * re-parents every request and response object, which costs a noticeable share of a token
 * request's CPU (bench/README.md), and the engine needs none of it.
 */
interface Route {
  readonly to: Destination;
  readonly matches: (path: string, method: string | undefined) => boolean;
  /** The path the destination is given instead of the request's own. */
  readonly servedAs?: string;
}

const ROUTING_TABLE: readonly Route[] = [
  // RFC 8414 metadata: the engine's OpenID discovery document is a superset of it (oidc/discovery.ts)
  { to: 'engine', matches: (path, method) => isMetadataAlias(path) && (method === 'GET' || method === 'HEAD'), servedAs: OIDC_DISCOVERY_PATH },
  // the JWKS where verifiers that skip discovery look for it: the engine's own endpoint in every
  // method, so a POST there is refused as on /jwks (a 405 naming GET and HEAD), not answered anew
  { to: 'engine', matches: (path) => path === JWKS_ALIAS_PATH, servedAs: routes.jwks },
  { to: 'engine', matches: (path) => ENGINE_PATHS.has(path) },
  { to: 'express', matches: () => true },
];

/** The path of a request target, without its query (`/token?x` → `/token`). */
function pathOf(url: string | undefined): string {
  if (url === undefined) return '/';
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

function securityHeaders(config: Pick<Config, 'issuer'>) {
  const https = config.issuer.startsWith('https:');
  return helmet({
    contentSecurityPolicy: {
      directives: {
        // RFC 9700 §4.16: pages are never framed
        frameAncestors: ["'none'"],
        // on an http issuer (development) this would send browsers to https
        upgradeInsecureRequests: https ? [] : null,
      },
    },
    // HSTS only makes sense when the issuer is served over https
    strictTransportSecurity: https,
  });
}

/** The headers of helmet's set that a JSON answer needs (below), by their lower-case names. */
const JSON_KEPT_HEADERS: ReadonlySet<string> = new Set(['strict-transport-security', 'x-content-type-options', 'referrer-policy', 'cross-origin-resource-policy']);

/**
 * The security headers of the engine's JSON endpoints (JSON_PATHS), computed once: no answer
 * there is a document, so of helmet's set they keep what an API answer needs (OWASP's REST
 * Security Cheat Sheet): HSTS (on https), `nosniff`, no referrer, same-origin resource policy,
 * and framing refused by both headers, with a content security policy that allows nothing
 * (`form-action` included, which `default-src` does not cover).
 * The policies only a document uses (its opener, origin agent cluster, DNS prefetching, IE's
 * download and XSS filters, Flash's cross-domain policies) are left out: each header set costs
 * every answer a little (bench/README.md "Counting instructions"). Pages, and everything
 * served by express, get helmet's whole set.
 */
export function jsonSecurityHeaders(config: Pick<Config, 'issuer'>): readonly (readonly [string, string])[] {
  const headers: [string, string][] = [];
  const recorder = {
    setHeader: (name: string, value: string) => {
      if (JSON_KEPT_HEADERS.has(name.toLowerCase())) headers.push([name, value]);
    },
    removeHeader: () => undefined,
  };
  securityHeaders(config)({} as IncomingMessage, recorder as unknown as ServerResponse, () => undefined);
  return [...headers, ['Content-Security-Policy', "default-src 'none'; form-action 'none'; frame-ancestors 'none'"], ['X-Frame-Options', 'DENY']];
}

/**
 * The input gate (http/input-gate.ts) in front of both destinations: undefined when the
 * request may go on, else why it is refused. A POST's body is read ahead and put back for its
 * parser; a body over the limit is refused unread. The admin API's bodies are JSON, which it
 * checks itself as strictly (admin/http/wire.ts).
 */
async function screen(req: IncomingMessage, path: string): Promise<string | undefined> {
  const early = inspectTarget(req.url ?? '/') ?? inspectHeaders(req.headers);
  if (early !== undefined || req.method !== 'POST') return early;
  const body = await readBodyAhead(req, BODY_LIMIT);
  if (body === undefined) return 'the request body is too large';
  return isAdminApiPath(path) ? undefined : inspectBody(body, req.headers['content-type']);
}

/** A refused request: a page on the browser's routes, RFC 6749 JSON elsewhere; the connection is not reused (a body may be left unread). */
function refuse(res: ServerResponse, path: string, reason: string): void {
  res.setHeader('Connection', 'close');
  if (isPagePath(path)) sendErrorPage(res, 400, 'invalid_request', reason);
  else sendError(res, 400, errorBody('invalid_request', reason));
}

/**
 * The issuer's request listener: every request gets the security headers (the JSON endpoints
 * their own set, jsonSecurityHeaders), is counted in the
 * metrics, goes through the CORS policy and the input gate, then to its destination in
 * ROUTING_TABLE.
 */
export function createApp(dependencies: AppDependencies): RequestListener {
  const { oidc, logger, metrics, cors } = dependencies;
  const headers = securityHeaders(dependencies.config);
  const jsonHeaders = jsonSecurityHeaders(dependencies.config);
  const app = sigilRoutes(dependencies);
  const handlers: Record<Destination, (req: IncomingMessage, res: ServerResponse) => unknown> = { engine: oidc, express: app };
  // verifiers that honour it re-fetch the keys at least twice while a next key waits out KEY_PUBLISH_LEAD
  const jwksCaching = `public, max-age=${jwksMaxAge(dependencies.config.keyPublishLead)}`;

  /** What cannot be answered otherwise (a failure in this listener itself): a bare JSON 500, never a stack. */
  const fail = (res: ServerResponse, error: unknown) => {
    logger.error({ err: error }, 'unhandled error');
    if (res.headersSent) res.destroy();
    else sendError(res, 500, SERVER_ERROR);
  };
  const dispatch = (req: IncomingMessage, res: ServerResponse, path: string) => {
    for (const route of ROUTING_TABLE) {
      if (!route.matches(path, req.method)) continue;
      if (route.servedAs !== undefined) req.url = route.servedAs;
      // the JWKS's caching at every path it is served as
      if ((route.servedAs ?? path) === routes.jwks) res.setHeader('Cache-Control', jwksCaching);
      void handlers[route.to](req, res);
      return;
    }
  };

  return (req, res) => {
    try {
      const path = pathOf(req.url);
      metrics.observe(req, res, path);
      const gated = () =>
        screen(req, path).then(
          (refusal) => (refusal === undefined ? dispatch(req, res, path) : refuse(res, path, refusal)),
          (error: unknown) => fail(res, error),
        );
      const guarded = () => cors.grant(req, res, path, (corsError?: unknown) => (corsError ? fail(res, corsError) : void gated()));
      if (JSON_PATHS.has(path)) {
        for (const [name, value] of jsonHeaders) res.setHeader(name, value);
        guarded();
        return;
      }
      headers(req, res, (headersError?: unknown) => (headersError ? fail(res, headersError) : guarded()));
    } catch (error) {
      fail(res, error);
    }
  };
}

/**
 * Errors from Sigil's own routes: RFC 6749-shaped JSON, never a stack; an unreachable database
 * is a 503 (Sigil's page for a browser, as on the login and consent pages).
 */
function errorHandler(logger: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (isDatabaseUnavailable(error)) {
      logUnavailable(logger, error);
      sendUnavailable(res, req.accepts(['json', 'html']) === 'html' ? 'html' : 'json');
      return;
    }
    const status = (error as { status?: unknown }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      sendError(res, status, errorBody('invalid_request', 'the request could not be processed'));
      return;
    }
    logger.error({ err: error }, 'unhandled error');
    sendError(res, 500, SERVER_ERROR);
  };
}

/** /readyz answers within this (plus a request's own time) whatever the network does. */
const READINESS_TIMEOUT_MS = 2000;

function readiness(databaseReachable: (timeoutMs: number) => Promise<boolean>): RequestHandler {
  return async (_req, res) => {
    if (await databaseReachable(READINESS_TIMEOUT_MS)) {
      res.json({ status: 'ready' });
      return;
    }
    res.setHeader('Retry-After', String(RETRY_AFTER_SECONDS));
    res.status(503).json({ status: 'unavailable', error_description: 'database unreachable' });
  };
}

/** Sigil's own routes, behind the security headers, metrics and CORS policy of `createApp`. */
function sigilRoutes({ config, oidc, databaseReachable, logger, interactions, metrics, trust, revocationFeed, adminApi }: AppDependencies): express.Express {
  const app = express();
  app.disable('x-powered-by');
  // an ETag is the admin API's to give, of an object (admin/http/router.ts), not of any answer
  app.set('etag', false);
  app.set('trust proxy', trust);

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', readiness(databaseReachable));
  // Prometheus: counters and durations only (no tokens, names or addresses); with METRICS_PORT
  // set they are served on that listener only (metricsListener)
  if (config.metricsPort === undefined) {
    app.get('/metrics', async (_req, res) => {
      res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
    });
  }
  app.get(REVOCATION_FEED_PATH, ...revocationFeed);
  // a POST carries a client assertion (private_key_jwt) or client_secret_post in its form
  app.post(REVOCATION_FEED_PATH, ...revocationFeed);
  // only the exact path (express matches mount paths in any case; a proxy rule on /admin/ would not)
  app.use(ADMIN_API_PATH, (req, res, next) => (isAdminApiPath(pathOf(req.originalUrl)) ? adminApi(req, res, next) : next()));
  app.use(interactions);

  // after every express route: the engine answers whatever reaches it, unknown paths as JSON 404s (oidc/errors.ts)
  app.use((req, res) => {
    void oidc(req, res);
  });
  app.use(errorHandler(logger));
  return app;
}

/**
 * The METRICS_PORT listener: `GET /metrics` (Prometheus), a JSON 404 for anything else, so the
 * metrics can be kept off the public listener and reached from the scraper's network only.
 */
export function metricsListener(metrics: IssuerMetrics, logger: Logger): RequestListener {
  return (req, res) => {
    if (pathOf(req.url) !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      sendError(res, 404, NOT_FOUND);
      return;
    }
    metrics.registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'metrics could not be collected');
        sendError(res, 500, SERVER_ERROR);
      },
    );
  };
}
