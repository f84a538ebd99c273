import os from 'node:os';
import path from 'node:path';

import { z } from 'zod';

import { trustProxy } from './http/client-address.js';

export type KeyStoreKind = 'files' | 'database';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** Parsed and validated issuer configuration; the only view of the environment the issuer uses. */
export interface Config {
  readonly port: number;
  /** Where `/metrics` is served on a listener of its own (then not on `port`); undefined: on `port`. */
  readonly metricsPort: number | undefined;
  /** Public base URL; `iss` of every token. No trailing slash. */
  readonly issuer: string;
  /** PostgreSQL connection string; undefined selects the embedded database under `dataDir`. */
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
  readonly keysDir: string;
  /** Where signing keys live: files in `keysDir`, or the `signing_keys` table (encrypted). */
  readonly keyStore: KeyStoreKind;
  /** KEYS_ENCRYPTION_KEY: 256-bit keys, the first encrypts, all decrypt; empty with the file store. */
  readonly keysEncryptionKeys: readonly Buffer[];
  /** Seconds a key signs before the issuer rotates it by itself; undefined: only `sigil keys rotate` rotates. */
  readonly keyRotationInterval: number | undefined;
  /** Seconds a new key is published before it may sign (past every verifier's JWKS cache). */
  readonly keyPublishLead: number;
  readonly corsOrigins: readonly string[];
  /** Cookie signing keys, newest first; undefined: generated once and kept in `dataDir`. */
  readonly cookieKeys: readonly string[] | undefined;
  readonly accessTokenTtl: number;
  readonly refreshTokenTtl: number;
  /** How long sign-in events are kept in the audit trail, in days. */
  readonly auditRetentionDays: number;
  /** Connections per process in the PostgreSQL pool. */
  readonly databasePoolMax: number;
  /** Most clients each process keeps validated in memory (least recently used ones go first). */
  readonly clientCacheMax: number;
  /** Bounds connecting, each statement and the wait for a pooled connection, in milliseconds. */
  readonly databaseTimeoutMs: number;
  /** Seconds during which a spent refresh token whose successor was never used is answered with that successor. */
  readonly refreshTokenRetryWindow: number;
  /** Seconds a SIGTERM leaves requests in flight to finish before the process exits. */
  readonly shutdownGrace: number;
  readonly logLevel: LogLevel;
  /** express `trust proxy`: false, true, a hop count, or a list of addresses/subnets. */
  readonly trustProxy: boolean | number | string;
  readonly production: boolean;
  /** Worker processes sharing the port (node:cluster); 1 with the embedded database. */
  readonly webConcurrency: number;
  /** libuv threads of this process (UV_THREADPOOL_SIZE, node's default 4): argon2id and RSA signatures run on them. */
  readonly threadpoolSize: number;
  /** OTEL_EXPORTER_OTLP_ENDPOINT: where traces are sent over OTLP/HTTP (`/v1/traces` appended); undefined: no tracing at all. */
  readonly otlpEndpoint: string | undefined;
  /** OTEL_SERVICE_NAME: the traces' `service.name`. */
  readonly serviceName: string;
  /** argon2id parameters for user passwords (never below OWASP's minimum). */
  readonly argon2: { readonly memoryKib: number; readonly timeCost: number; readonly parallelism: number };
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const MIN_COOKIE_KEY_LENGTH = 32;

const blankToUndefined = (value: unknown): unknown =>
  typeof value === 'string' && value.trim() === '' ? undefined : value;

const integer = (min: number, max: number, fallback: number) =>
  z.preprocess(
    blankToUndefined,
    z
      .string()
      .regex(/^\d+$/u, 'must be a whole number')
      .transform(Number)
      .pipe(z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`))
      .default(fallback),
  );

const commaList = z.preprocess(blankToUndefined, z.string().optional()).transform((value) =>
  value === undefined
    ? []
    : value
        .split(',')
        .map((item) => item.trim())
        .filter((item) => item !== ''),
);

/** A 256-bit key written in base64url (43 characters), as `KEYS_ENCRYPTION_KEY` takes them. */
const encryptionKey = z
  .string()
  .refine(
    (value) => /^[A-Za-z0-9_-]{43}$/u.test(value) && Buffer.from(value, 'base64url').length === 32,
    'each entry must be 32 random bytes in base64url (43 characters), e.g. from: openssl rand 32 | basenc --base64url | tr -d =',
  );

/** Workers by default: one per core, but at most this many (README, "Connection budget"). */
export const MAX_DEFAULT_WORKERS = 4;

const origin = z.string().refine((value) => {
  const url = URL.parse(value);
  return url !== null && (url.protocol === 'https:' || url.protocol === 'http:') && url.origin === value;
}, 'each entry must be an origin such as https://app.example.com (scheme, host and port only)');

const schema = z
  .object({
    NODE_ENV: z.preprocess(blankToUndefined, z.string().optional()),
    PORT: integer(0, 65535, 4000),
    METRICS_PORT: z.preprocess(
      blankToUndefined,
      z
        .string()
        .regex(/^\d+$/u, 'must be a whole number')
        .transform(Number)
        .pipe(z.number().int().max(65535, 'must be at most 65535'))
        .optional(),
    ),
    ISSUER: z.preprocess(blankToUndefined, z.string().optional()),
    DATABASE_URL: z.preprocess(
      blankToUndefined,
      z
        .string()
        .refine((value) => /^postgres(ql)?:\/\//u.test(value) && URL.canParse(value), 'must be a postgres:// URL')
        .optional(),
    ),
    DATA_DIR: z.preprocess(blankToUndefined, z.string().default('./data')),
    KEYS_DIR: z.preprocess(blankToUndefined, z.string().default('./keys')),
    KEY_STORE: z.preprocess(blankToUndefined, z.enum(['files', 'database'], 'must be files or database').default('files')),
    KEYS_ENCRYPTION_KEY: commaList.pipe(z.array(encryptionKey)),
    KEY_ROTATION_INTERVAL: z.preprocess(
      blankToUndefined,
      z
        .string()
        .regex(/^\d+$/u, 'must be a whole number of seconds')
        .transform(Number)
        .pipe(z.number().int().min(10, 'must be at least 10').max(31_536_000, 'must be at most 31536000'))
        .optional(),
    ),
    KEY_PUBLISH_LEAD: integer(0, 2_592_000, 3600),
    CORS_ORIGINS: commaList.pipe(z.array(origin)),
    COOKIE_KEYS: commaList.pipe(
      z.array(
        z.string().min(MIN_COOKIE_KEY_LENGTH, `each key must be at least ${MIN_COOKIE_KEY_LENGTH} characters`),
      ),
    ),
    ACCESS_TOKEN_TTL: integer(60, 86_400, 900),
    REFRESH_TOKEN_TTL: integer(300, 31_536_000, 1_209_600),
    AUDIT_RETENTION_DAYS: integer(1, 36_500, 90),
    DATABASE_POOL_MAX: integer(1, 1000, 10),
    CLIENT_CACHE_MAX: integer(1, 10_000_000, 20_000),
    DATABASE_TIMEOUT_MS: integer(100, 600_000, 5000),
    REFRESH_TOKEN_RETRY_WINDOW: integer(0, 300, 10),
    SHUTDOWN_GRACE: integer(1, 3600, 10),
    LOG_LEVEL: z.preprocess(
      blankToUndefined,
      z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    ),
    TRUST_PROXY: z.preprocess(blankToUndefined, z.string().optional()),
    WEB_CONCURRENCY: z.preprocess(blankToUndefined, z.string().regex(/^\d+$/u, 'must be a whole number').transform(Number).pipe(z.number().int().min(1, 'must be at least 1').max(64, 'must be at most 64')).optional()),
    ARGON2_MEMORY_KIB: integer(19_456, 4_194_304, 19_456),
    ARGON2_TIME_COST: integer(2, 100, 2),
    ARGON2_PARALLELISM: integer(1, 64, 1),
    // libuv reads it itself (at most 1024); here only to leave one of its threads to signatures
    UV_THREADPOOL_SIZE: integer(1, 1024, 4),
    OTEL_EXPORTER_OTLP_ENDPOINT: z.preprocess(
      blankToUndefined,
      z
        .string()
        .refine((value) => {
          const url = URL.parse(value);
          return url !== null && (url.protocol === 'http:' || url.protocol === 'https:') && url.search === '' && url.hash === '' && url.username === '';
        }, 'must be an http(s) URL such as http://collector:4318 (no query or credentials: OTEL_EXPORTER_OTLP_HEADERS carries those)')
        .optional(),
    ),
    OTEL_SERVICE_NAME: z.preprocess(
      blankToUndefined,
      z.string().max(100, 'must be at most 100 characters').regex(/^[\x21-\x7e]+$/u, 'must be printable ASCII without spaces').default('sigil-issuer'),
    ),
    ALLOW_INSECURE_ISSUER: z.preprocess(blankToUndefined, z.enum(['true', 'false']).default('false')),
  })
  .superRefine((env, ctx) => {
    const production = env.NODE_ENV === 'production';
    if (env.ISSUER !== undefined) {
      const url = URL.parse(env.ISSUER);
      if (url === null || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
        ctx.addIssue({ code: 'custom', path: ['ISSUER'], message: 'must be an absolute http(s) URL' });
      } else if (url.pathname !== '/' || url.search !== '' || url.hash !== '' || url.username !== '') {
        ctx.addIssue({
          code: 'custom',
          path: ['ISSUER'],
          message: 'must be a bare origin such as https://auth.example.com (no path, query or credentials)',
        });
      } else if (production && url.protocol === 'http:' && env.ALLOW_INSECURE_ISSUER !== 'true') {
        ctx.addIssue({
          code: 'custom',
          path: ['ISSUER'],
          message: 'must use https when NODE_ENV=production (set ALLOW_INSECURE_ISSUER=true to override)',
        });
      }
    } else if (production) {
      ctx.addIssue({ code: 'custom', path: ['ISSUER'], message: 'is required when NODE_ENV=production' });
    }
    const proxies = env.TRUST_PROXY;
    if (proxies !== undefined && !['true', 'false'].includes(proxies) && !/^\d+$/u.test(proxies) && !trustProxyListValid(proxies)) {
      ctx.addIssue({
        code: 'custom',
        path: ['TRUST_PROXY'],
        message: 'must be true, false, a hop count, or a comma-separated list of addresses, subnets, loopback, linklocal or uniquelocal',
      });
    }
    if (production && env.COOKIE_KEYS.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['COOKIE_KEYS'], message: 'is required when NODE_ENV=production' });
    }
    if (env.DATABASE_URL === undefined && env.WEB_CONCURRENCY !== undefined && env.WEB_CONCURRENCY > 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['WEB_CONCURRENCY'],
        message: 'above 1 needs DATABASE_URL (the embedded database has a single owner process)',
      });
    }
    if (env.METRICS_PORT !== undefined && env.METRICS_PORT !== 0 && env.METRICS_PORT === env.PORT) {
      ctx.addIssue({ code: 'custom', path: ['METRICS_PORT'], message: 'must differ from PORT (it is a listener of its own)' });
    }
    if (env.KEY_STORE === 'database' && env.KEYS_ENCRYPTION_KEY.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['KEYS_ENCRYPTION_KEY'], message: 'is required when KEY_STORE=database' });
    }
    if (env.KEY_ROTATION_INTERVAL !== undefined && env.KEY_ROTATION_INTERVAL <= env.KEY_PUBLISH_LEAD) {
      ctx.addIssue({
        code: 'custom',
        path: ['KEY_ROTATION_INTERVAL'],
        message: `must be longer than KEY_PUBLISH_LEAD (${env.KEY_PUBLISH_LEAD} s): the next key is published one lead before it signs`,
      });
    }
    if (env.REFRESH_TOKEN_TTL < env.ACCESS_TOKEN_TTL) {
      ctx.addIssue({
        code: 'custom',
        path: ['REFRESH_TOKEN_TTL'],
        message: 'must not be shorter than ACCESS_TOKEN_TTL',
      });
    }
  });

/**
 * Every environment variable the issuer reads, taken from the schema itself so that it cannot
 * drift from what is parsed: checks of a deployment (the compose file's test) compare against it.
 */
export const ISSUER_VARIABLES: readonly string[] = Object.freeze(Object.keys(schema.shape));

/** Whether a TRUST_PROXY list names only addresses, subnets and proxy-addr's names (checked before anything starts). */
function trustProxyListValid(value: string): boolean {
  try {
    trustProxy(value);
    return true;
  } catch {
    return false;
  }
}

/** Never echoed in an error: they hold secrets (or may: a collector's URL with credentials). */
const SECRET_VARIABLES = new Set(['COOKIE_KEYS', 'DATABASE_URL', 'KEYS_ENCRYPTION_KEY', 'OTEL_EXPORTER_OTLP_ENDPOINT']);

function parseTrustProxy(value: string | undefined): boolean | number | string {
  if (value === undefined || value === 'false') return false;
  if (value === 'true') return true;
  if (/^\d+$/u.test(value)) return Number(value);
  return value;
}

/**
 * Reads the issuer's configuration from an environment.
 * Every variable is checked; the error names each bad one in a single line. `admin`
 * (the CLI) skips the checks that only matter to a serving issuer.
 */
export function loadConfig(
  env: NodeJS.ProcessEnv,
  cwd: string = process.cwd(),
  purpose: 'serve' | 'admin' = 'serve',
): Config {
  // the CLI never serves HTTP: production's serving requirements don't apply to it
  const result = schema.safeParse(purpose === 'admin' ? { ...env, NODE_ENV: undefined } : env);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const name = String(issue.path[0] ?? 'environment');
      const got = typeof env[name] === 'string' && !SECRET_VARIABLES.has(name)
        ? ` (got "${env[name]}")`
        : '';
      return `${name} ${issue.message}${got}`;
    });
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  }
  const env2 = result.data;
  const issuer = (env2.ISSUER ?? `http://localhost:${env2.PORT}`).replace(/\/$/u, '');
  return Object.freeze({
    port: env2.PORT,
    metricsPort: env2.METRICS_PORT,
    issuer,
    databaseUrl: env2.DATABASE_URL,
    dataDir: path.resolve(cwd, env2.DATA_DIR),
    keysDir: path.resolve(cwd, env2.KEYS_DIR),
    keyStore: env2.KEY_STORE,
    keysEncryptionKeys: Object.freeze(env2.KEYS_ENCRYPTION_KEY.map((key) => Buffer.from(key, 'base64url'))),
    keyRotationInterval: env2.KEY_ROTATION_INTERVAL,
    keyPublishLead: env2.KEY_PUBLISH_LEAD,
    corsOrigins: Object.freeze([...env2.CORS_ORIGINS]),
    cookieKeys: env2.COOKIE_KEYS.length > 0 ? Object.freeze([...env2.COOKIE_KEYS]) : undefined,
    accessTokenTtl: env2.ACCESS_TOKEN_TTL,
    refreshTokenTtl: env2.REFRESH_TOKEN_TTL,
    auditRetentionDays: env2.AUDIT_RETENTION_DAYS,
    databasePoolMax: env2.DATABASE_POOL_MAX,
    clientCacheMax: env2.CLIENT_CACHE_MAX,
    databaseTimeoutMs: env2.DATABASE_TIMEOUT_MS,
    refreshTokenRetryWindow: env2.REFRESH_TOKEN_RETRY_WINDOW,
    shutdownGrace: env2.SHUTDOWN_GRACE,
    logLevel: env2.LOG_LEVEL,
    trustProxy: parseTrustProxy(env2.TRUST_PROXY),
    production: env.NODE_ENV === 'production',
    // each worker holds DATABASE_POOL_MAX + 1 connections: past a few workers, more cost connections, not throughput
    webConcurrency: env2.WEB_CONCURRENCY ?? (env2.DATABASE_URL === undefined ? 1 : Math.min(os.availableParallelism(), MAX_DEFAULT_WORKERS)),
    threadpoolSize: env2.UV_THREADPOOL_SIZE,
    otlpEndpoint: env2.OTEL_EXPORTER_OTLP_ENDPOINT,
    serviceName: env2.OTEL_SERVICE_NAME,
    argon2: Object.freeze({
      memoryKib: env2.ARGON2_MEMORY_KIB,
      timeCost: env2.ARGON2_TIME_COST,
      parallelism: env2.ARGON2_PARALLELISM,
    }),
  });
}
