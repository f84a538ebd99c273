import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

import { CORS_PATHS } from './oidc/routes.js';

/** Prometheus metrics of one issuer: counters and durations only, never a token or a name. */
export interface IssuerMetrics {
  readonly registry: Registry;
  readonly tokenRequests: Counter<'grant_type' | 'outcome'>;
  readonly signIns: Counter<'outcome'>;
  /** Records the duration and status of `req` once answered; `path` is its path without the query. */
  observe(req: IncomingMessage, res: ServerResponse, path: string): void;
}

const KNOWN_PATHS = new Set([...CORS_PATHS, '/auth', '/session/end', '/healthz', '/readyz', '/metrics']);

export function createMetrics(): IssuerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'sigil_' });
  const duration = new Histogram({
    name: 'sigil_http_request_duration_seconds',
    help: 'HTTP requests by route and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const tokenRequests = new Counter({
    name: 'sigil_token_requests_total',
    help: 'Token endpoint requests by grant type and outcome (success, or the OAuth error code)',
    labelNames: ['grant_type', 'outcome'],
    registers: [registry],
  });
  const signIns = new Counter({
    name: 'sigil_sign_ins_total',
    help: 'Password sign-ins (password grant and login form) by outcome',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const observe = (req: IncomingMessage, res: ServerResponse, path: string) => {
    const stop = duration.startTimer();
    res.once('finish', () => {
      const route = KNOWN_PATHS.has(path) ? path : path.startsWith('/interaction/') ? '/interaction/:uid' : 'other';
      stop({ method: req.method ?? 'GET', route, status: String(res.statusCode) });
    });
  };
  return { registry, tokenRequests, signIns, observe };
}
