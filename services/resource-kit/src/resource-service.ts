import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import { createGuard, IssuerMetadataRefused, writeErrorResponse, type Guard, type GuardLogger, type GuardOptions } from '@sigil/guard';
import express, { type ErrorRequestHandler, type Express } from 'express';
import helmet from 'helmet';
import { pino } from 'pino';

import { guardMetrics } from './metrics.js';
import { resourceServiceConfig, ServiceConfigError, type ResourceServiceConfig } from './service-config.js';

/**
 * @example
 * ```ts
 * createResourceApp({ config, logger, routes: (app, guard) => app.get('/x', guard.requireAuth(), handler) });
 * ```
 */
export interface ResourceServiceOptions {
  readonly config: ResourceServiceConfig;
  readonly logger: GuardLogger & { info(details: Record<string, unknown>, message: string): void; error(details: Record<string, unknown>, message: string): void };
  /** Adds the service's own routes, guarded with `guard`. */
  readonly routes: (app: Express, guard: Guard) => void;
  /** Extra guard options (cache sizes, clock tolerance…). */
  readonly guard?: Partial<Omit<GuardOptions, 'issuer' | 'audience' | 'apiKeys' | 'revocations' | 'logger'>> & {
    readonly apiKeyCache?: { readonly positiveTtlMs?: number; readonly negativeTtlMs?: number };
    /** Polling of the revocation feed (on with a guard client; the interval is REVOCATION_POLL_INTERVAL_MS). */
    readonly revocationFeed?: { readonly staleIfErrorMs?: number; readonly enabled?: boolean };
  };
}

/**
 * The frame shared by Sigil's resource services: helmet, a JSON body parser, `GET /healthz`,
 * `GET /metrics` (Prometheus: the guard's counters and the process's), the guard built from
 * the service's configuration, and JSON answers for unknown routes and
 * errors (never a stack).
 *
 * @example
 * ```ts
 * const app = createResourceApp({
 *   config, logger,
 *   routes: (app, guard) => app.get('/reports', guard.requireScope('reports:read'), listReports),
 * });
 * ```
 */
export function createResourceApp(options: ResourceServiceOptions): { app: Express; guard: Guard } {
  const { config, logger } = options;
  const { apiKeyCache, revocationFeed, ...guardExtras } = options.guard ?? {};
  const { enabled: pollRevocations = true, ...feedOptions } = revocationFeed ?? {};
  const client = config.guardClient;
  const guard = createGuard({
    ...guardExtras,
    issuer: config.issuer,
    audience: config.audience,
    logger,
    // the URL clients call (a proxy in front may change it): what their DPoP proofs name
    ...(config.publicUrl === undefined ? {} : { publicUrl: config.publicUrl }),
    ...(client === undefined ? {} : { apiKeys: { ...client, ...apiKeyCache } }),
    // the service's own client reads the revocation feed: revoked tokens are refused without a call per request
    ...(client === undefined || !pollRevocations ? {} : { revocations: { ...client, ...feedOptions, intervalMs: config.revocationPollMs } }),
  });
  const app = express();
  app.disable('x-powered-by');
  app.use(helmet());
  app.use(express.json({ limit: '16kb' }));
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  const metrics = guardMetrics(guard);
  app.get('/metrics', (_req, res, next) => {
    metrics.metrics().then((text) => {
      res.setHeader('Content-Type', metrics.contentType);
      res.send(text);
    }, next);
  });
  options.routes(app, guard);
  app.use((_req, res) => {
    writeErrorResponse(res, 404, 'not_found', 'no such endpoint');
  });
  const errors: ErrorRequestHandler = (error: unknown, _req, res, _next) => {
    const status = (error as { status?: unknown }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      writeErrorResponse(res, status, 'invalid_request', 'the request body could not be read');
      return;
    }
    logger.error({ err: error }, 'unhandled error');
    writeErrorResponse(res, 500, 'server_error', 'an unexpected error occurred');
  };
  app.use(errors);
  return { app, guard };
}

/**
 * Serves an app on `port`; `close()` stops accepting requests and ends idle connections.
 *
 * @example
 * ```ts
 * const running = await serve(app, 4001);
 * console.log(running.url);
 * ```
 */
export async function serve(app: Express, port: number): Promise<{ url: string; port: number; close(): Promise<void> }> {
  const server = createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => resolve());
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${actual}`,
    port: actual,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), 2000).unref();
      }),
  };
}

/** Longest wait between two attempts to read the issuer's metadata while it is unreachable. */
const ISSUER_RETRY_MAX_MS = 30_000;

/** One line and exit 1: the issuer answered with metadata the guard will not use (a wrong ISSUER, most often). */
function refuseToRun(name: string, error: IssuerMetadataRefused): never {
  process.stderr.write(`${name}: ${error.reason}\n`);
  process.exit(1);
}

/**
 * Until the guard has read the issuer's metadata: tried again with a growing delay while the
 * issuer is unreachable (requests meanwhile are answered 503 and try too), and the process
 * ends as at start if the issuer comes back with metadata the guard refuses. Answers a
 * function that stops trying (shutdown).
 */
function keepReadingIssuer(name: string, guard: Guard, logger: ResourceServiceOptions['logger']): () => void {
  let timer: NodeJS.Timeout | undefined;
  const attempt = (delayMs: number) => {
    timer = setTimeout(() => {
      guard.ready().then(
        () => logger.info({}, 'issuer metadata read'),
        (error: unknown) => {
          if (error instanceof IssuerMetadataRefused) refuseToRun(name, error);
          attempt(Math.min(delayMs * 2, ISSUER_RETRY_MAX_MS));
        },
      );
    }, delayMs);
    timer.unref();
  };
  attempt(1000);
  return () => clearTimeout(timer);
}

/**
 * The whole `main` of a resource service: reads its configuration (a bad value exits 2
 * with one line), builds the app, checks the issuer's metadata (metadata the guard refuses,
 * such as another `issuer` than ISSUER, exits 1 with one line; an unreachable issuer is
 * retried while the service runs), serves it, and stops cleanly on SIGTERM/SIGINT.
 *
 * @example
 * ```ts
 * await runResourceService('reports-api', { port: 4002, audience: 'http://localhost:4002' }, createReportsApp);
 * ```
 */
export async function runResourceService(
  name: string,
  defaults: { readonly port: number; readonly audience: string },
  build: (options: Omit<ResourceServiceOptions, 'routes'>) => { app: Express; guard: Guard },
): Promise<void> {
  let config: ResourceServiceConfig;
  try {
    config = resourceServiceConfig(process.env, defaults);
  } catch (error) {
    if (!(error instanceof ServiceConfigError)) throw error;
    process.stderr.write(`${name}: ${error.message}\n`);
    process.exit(2);
  }
  const logger = pino({ level: config.logLevel, base: { service: name } });
  const { app, guard } = build({ config, logger });
  let stopReading = () => {};
  try {
    await guard.ready();
  } catch (error) {
    if (error instanceof IssuerMetadataRefused) refuseToRun(name, error);
    logger.warn({ issuer: config.issuer, reason: (error as Error).message }, 'issuer unreachable at start; retrying while serving (503 until then)');
    stopReading = keepReadingIssuer(name, guard, logger);
  }
  const running = await serve(app, config.port);
  logger.info(
    { port: running.port, issuer: config.issuer, audience: config.audience, apiKeys: config.guardClient !== undefined, revocationFeed: guard.revocations !== undefined },
    `${name} listening`,
  );
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      stopReading();
      guard.close();
      void running.close().then(() => process.exit(0));
    });
  }
}
