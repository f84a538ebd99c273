import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

import { CORS_PATHS } from './oidc/routes.js';

/** Prometheus metrics of one issuer: counters and durations only, never a token or a name. */
export interface IssuerMetrics {
  readonly registry: Registry;
  readonly tokenRequests: Counter<'grant_type' | 'outcome'>;
  readonly signIns: Counter<'outcome'>;
  /** Key rotation steps this process took (publish, promote, remove). */
  readonly keyRotationSteps: Counter<'step'>;
  /** Where the key gauges read from: the current key's activation and the next rotation's time (undefined: none planned). */
  followKeys(source: () => { readonly activeSince: Date | undefined; readonly nextRotationAt: Date | undefined }): void;
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
  const keyRotationSteps = new Counter({
    name: 'sigil_signing_key_rotation_steps_total',
    help: 'Signing key rotation steps taken by this process (publish, promote, remove)',
    labelNames: ['step'],
    registers: [registry],
  });
  let keys: Parameters<IssuerMetrics['followKeys']>[0] = () => ({ activeSince: undefined, nextRotationAt: undefined });
  new Gauge({
    name: 'sigil_signing_key_age_seconds',
    help: 'How long the current signing key has been signing',
    registers: [registry],
    collect() {
      const since = keys().activeSince;
      if (since !== undefined) this.set((Date.now() - since.getTime()) / 1000);
    },
  });
  new Gauge({
    name: 'sigil_signing_key_next_rotation_seconds',
    help: 'Seconds until the current signing key is replaced (KEY_ROTATION_INTERVAL; absent when rotation is by command only)',
    registers: [registry],
    collect() {
      const at = keys().nextRotationAt;
      if (at !== undefined) this.set((at.getTime() - Date.now()) / 1000);
    },
  });
  const observe = (req: IncomingMessage, res: ServerResponse, path: string) => {
    const stop = duration.startTimer();
    res.once('finish', () => {
      const route = KNOWN_PATHS.has(path) ? path : path.startsWith('/interaction/') ? '/interaction/:uid' : 'other';
      stop({ method: req.method ?? 'GET', route, status: String(res.statusCode) });
    });
  };
  return {
    registry,
    tokenRequests,
    signIns,
    keyRotationSteps,
    followKeys: (source) => {
      keys = source;
    },
    observe,
  };
}
