import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

import { CORS_PATHS } from './oidc/routes.js';
import type { DatabasePoolState } from './storage/db.js';

/** Prometheus metrics of one issuer: counters, gauges and durations only, never a token or a name. */
export interface IssuerMetrics {
  readonly registry: Registry;
  readonly tokenRequests: Counter<'grant_type' | 'outcome'>;
  readonly signIns: Counter<'outcome'>;
  /** Key rotation steps this process took (publish, promote, remove). */
  readonly keyRotationSteps: Counter<'step'>;
  /** Where the key gauges read from: the current key's activation and the next rotation's time (undefined: none planned). */
  followKeys(source: () => { readonly activeSince: Date | undefined; readonly nextRotationAt: Date | undefined }): void;
  /** Client lookups answered from the client cache (hit) or the database (miss, also while the cache is bypassed). */
  readonly clientCacheLookups: Counter<'result'>;
  /** Keys (account, ip, pair) a failed sign-in locked. */
  readonly loginLocks: Counter<'key'>;
  /** Where the pool gauges read from (read when scraped). */
  followDatabasePool(source: () => DatabasePoolState | undefined): void;
  /** Where the password hashing metrics read from (the hasher's usage, read when scraped). */
  followPasswordHashing(source: () => { readonly busyMs: number; readonly slots: number }): void;
  /** Where the locked-keys gauge reads from (a query, run when scraped). */
  followLockedKeys(source: () => Promise<Readonly<Record<string, number>>>): void;
  /** Records the duration and status of `req` once answered; `path` is its path without the query. */
  observe(req: IncomingMessage, res: ServerResponse, path: string): void;
}

const KNOWN_PATHS = new Set([...CORS_PATHS, '/auth', '/session/end', '/healthz', '/readyz', '/metrics']);

/** The route of a request's path, as metrics (and traces) name it: a known path, `/interaction/:uid` or `other`. */
export function routeOf(path: string): string {
  return KNOWN_PATHS.has(path) ? path : path.startsWith('/interaction/') ? '/interaction/:uid' : 'other';
}

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
  const clientCacheLookups = new Counter({
    name: 'sigil_client_cache_lookups_total',
    help: 'Client lookups by result: hit (from the cache) or miss (read from the database)',
    labelNames: ['result'],
    registers: [registry],
  });
  clientCacheLookups.inc({ result: 'hit' }, 0);
  clientCacheLookups.inc({ result: 'miss' }, 0);
  const loginLocks = new Counter({
    name: 'sigil_login_locks_total',
    help: 'Sign-in throttle locks applied, by key (pair: account and address; account; ip)',
    labelNames: ['key'],
    registers: [registry],
  });
  let pool: () => DatabasePoolState | undefined = () => undefined;
  new Gauge({
    name: 'sigil_database_pool_connections',
    help: 'Database pool connections by state (in_use, idle) and its max',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const state = pool();
      if (state === undefined) return;
      this.set({ state: 'in_use' }, state.inUse);
      this.set({ state: 'idle' }, state.idle);
      this.set({ state: 'max' }, state.max);
    },
  });
  new Gauge({
    name: 'sigil_database_pool_waiting',
    help: 'Queries waiting for a database connection from the pool',
    registers: [registry],
    collect() {
      const state = pool();
      if (state !== undefined) this.set(state.waiting);
    },
  });
  let hashing: () => { readonly busyMs: number; readonly slots: number } = () => ({ busyMs: 0, slots: 0 });
  new Counter({
    name: 'sigil_password_hashing_seconds_total',
    help: 'Time argon2id computations ran in this process, summed over its slots (utilisation: its rate / sigil_password_hashing_slots)',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(hashing().busyMs / 1000);
    },
  });
  new Gauge({
    name: 'sigil_password_hashing_slots',
    help: 'argon2id computations this process runs at once at most',
    registers: [registry],
    collect() {
      const { slots } = hashing();
      if (Number.isFinite(slots)) this.set(slots);
    },
  });
  let lockedKeys: () => Promise<Readonly<Record<string, number>>> = () => Promise.resolve({});
  new Gauge({
    name: 'sigil_login_locked_keys',
    help: 'Sign-in throttle keys locked now, by key (pair, account, ip); absent when the database does not answer',
    labelNames: ['key'],
    registers: [registry],
    async collect() {
      this.reset();
      let counts: Readonly<Record<string, number>>;
      try {
        counts = await lockedKeys();
      } catch {
        return;
      }
      for (const key of ['pair', 'account', 'ip']) this.set({ key }, counts[key] ?? 0);
    },
  });
  const observe = (req: IncomingMessage, res: ServerResponse, path: string) => {
    const stop = duration.startTimer();
    res.once('finish', () => {
      const route = routeOf(path);
      stop({ method: req.method ?? 'GET', route, status: String(res.statusCode) });
    });
  };
  return {
    registry,
    tokenRequests,
    signIns,
    keyRotationSteps,
    clientCacheLookups,
    loginLocks,
    followPasswordHashing: (source) => {
      hashing = source;
    },
    followDatabasePool: (source) => {
      pool = source;
    },
    followLockedKeys: (source) => {
      lockedKeys = source;
    },
    followKeys: (source) => {
      keys = source;
    },
    observe,
  };
}
