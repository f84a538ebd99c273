import os from 'node:os';
import path from 'node:path';

import { describe, expect, it } from '@jest/globals';

import { ConfigError, loadConfig } from '../../src/config.js';

const cwd = '/srv/sigil';
// two 256-bit keys in base64url, as KEYS_ENCRYPTION_KEY takes them
const KEY_A = Buffer.alloc(32, 1).toString('base64url');
const KEY_B = Buffer.alloc(32, 2).toString('base64url');

function errorMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('expected an error');
}

describe('loadConfig', () => {
  it('when the environment is empty, uses the documented defaults', () => {
    const config = loadConfig({}, cwd);
    expect(config).toEqual({
      port: 4000,
      metricsPort: undefined,
      issuer: 'http://localhost:4000',
      databaseUrl: undefined,
      dataDir: path.join(cwd, 'data'),
      keysDir: path.join(cwd, 'keys'),
      keyStore: 'files',
      keysEncryptionKeys: [],
      keyRotationInterval: undefined,
      keyPublishLead: 3600,
      corsOrigins: [],
      cookieKeys: undefined,
      accessTokenTtl: 900,
      auditRetentionDays: 90,
      refreshTokenTtl: 1_209_600,
      databasePoolMax: 10,
      clientCacheMax: 20_000,
      databaseTimeoutMs: 5000,
      refreshTokenRetryWindow: 10,
      shutdownGrace: 10,
      logLevel: 'info',
      trustProxy: false,
      production: false,
      webConcurrency: 1,
      threadpoolSize: 4,
      otlpEndpoint: undefined,
      serviceName: 'sigil-issuer',
      argon2: { memoryKib: 19_456, timeCost: 2, parallelism: 1 },
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('when every variable is set, parses each one', () => {
    const config = loadConfig(
      {
        PORT: '8080',
        ISSUER: 'https://auth.example.com/',
        DATABASE_URL: 'postgres://sigil@db:5432/sigil',
        DATA_DIR: '/var/lib/sigil',
        KEYS_DIR: 'secrets/keys',
        CORS_ORIGINS: 'https://app.example.com, http://localhost:3000',
        COOKIE_KEYS: `${'a'.repeat(32)},${'b'.repeat(40)}`,
        ACCESS_TOKEN_TTL: '300',
        REFRESH_TOKEN_TTL: '86400',
        LOG_LEVEL: 'warn',
        TRUST_PROXY: '1',
        WEB_CONCURRENCY: '2',
        DATABASE_POOL_MAX: '25',
        CLIENT_CACHE_MAX: '100000',
        DATABASE_TIMEOUT_MS: '1500',
        REFRESH_TOKEN_RETRY_WINDOW: '0',
        SHUTDOWN_GRACE: '30',
        METRICS_PORT: '9464',
        KEY_STORE: 'database',
        KEYS_ENCRYPTION_KEY: `${KEY_A}, ${KEY_B}`,
        KEY_ROTATION_INTERVAL: '604800',
        KEY_PUBLISH_LEAD: '7200',
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
        OTEL_SERVICE_NAME: 'sigil-issuer-eu',
      },
      cwd,
    );
    expect(config).toMatchObject({
      port: 8080,
      metricsPort: 9464,
      issuer: 'https://auth.example.com',
      databaseUrl: 'postgres://sigil@db:5432/sigil',
      dataDir: '/var/lib/sigil',
      keysDir: path.join(cwd, 'secrets/keys'),
      corsOrigins: ['https://app.example.com', 'http://localhost:3000'],
      cookieKeys: ['a'.repeat(32), 'b'.repeat(40)],
      accessTokenTtl: 300,
      refreshTokenTtl: 86_400,
      logLevel: 'warn',
      trustProxy: 1,
      webConcurrency: 2,
      databasePoolMax: 25,
      clientCacheMax: 100_000,
      databaseTimeoutMs: 1500,
      refreshTokenRetryWindow: 0,
      shutdownGrace: 30,
      keyStore: 'database',
      keysEncryptionKeys: [Buffer.from(KEY_A, 'base64url'), Buffer.from(KEY_B, 'base64url')],
      keyRotationInterval: 604_800,
      keyPublishLead: 7200,
      otlpEndpoint: 'http://collector:4318',
      serviceName: 'sigil-issuer-eu',
    });
  });

  it('when DATABASE_URL is set and WEB_CONCURRENCY is not, runs one worker per core but at most four', () => {
    const { webConcurrency } = loadConfig({ DATABASE_URL: 'postgres://sigil@db/sigil' }, cwd);
    expect(webConcurrency).toBe(Math.min(os.availableParallelism(), 4));
  });

  it.each([
    [{ PORT: 'abc' }, 'invalid configuration: PORT must be a whole number (got "abc")'],
    [{ PORT: '70000' }, 'invalid configuration: PORT must be at most 65535 (got "70000")'],
    [{ ISSUER: 'auth.example.com' }, 'invalid configuration: ISSUER must be an absolute http(s) URL (got "auth.example.com")'],
    [
      { ISSUER: 'https://example.com/auth' },
      'invalid configuration: ISSUER must be a bare origin such as https://auth.example.com (no path, query or credentials) (got "https://example.com/auth")',
    ],
    [{ DATABASE_URL: 'mysql://x' }, 'invalid configuration: DATABASE_URL must be a postgres:// URL'],
    [
      { CORS_ORIGINS: 'https://app.example.com/path' },
      'invalid configuration: CORS_ORIGINS each entry must be an origin such as https://app.example.com (scheme, host and port only) (got "https://app.example.com/path")',
    ],
    [{ COOKIE_KEYS: 'short' }, 'invalid configuration: COOKIE_KEYS each key must be at least 32 characters'],
    [{ ACCESS_TOKEN_TTL: '10' }, 'invalid configuration: ACCESS_TOKEN_TTL must be at least 60 (got "10")'],
    [{ LOG_LEVEL: 'loud' }, expect.stringMatching(/^invalid configuration: LOG_LEVEL .* \(got "loud"\)$/u)],
    [{ TRUST_PROXY: 'maybe' }, expect.stringMatching(/^invalid configuration: TRUST_PROXY must be true, false, a hop count, or a comma-separated list/u)],
    [{ DATABASE_TIMEOUT_MS: '50' }, 'invalid configuration: DATABASE_TIMEOUT_MS must be at least 100 (got "50")'],
    [{ DATABASE_POOL_MAX: '0' }, 'invalid configuration: DATABASE_POOL_MAX must be at least 1 (got "0")'],
    [{ CLIENT_CACHE_MAX: '0' }, 'invalid configuration: CLIENT_CACHE_MAX must be at least 1 (got "0")'],
    [{ REFRESH_TOKEN_RETRY_WINDOW: '301' }, 'invalid configuration: REFRESH_TOKEN_RETRY_WINDOW must be at most 300 (got "301")'],
    [{ SHUTDOWN_GRACE: 'soon' }, 'invalid configuration: SHUTDOWN_GRACE must be a whole number (got "soon")'],
    [{ METRICS_PORT: 'x' }, 'invalid configuration: METRICS_PORT must be a whole number (got "x")'],
    [{ METRICS_PORT: '70000' }, 'invalid configuration: METRICS_PORT must be at most 65535 (got "70000")'],
    [{ PORT: '4000', METRICS_PORT: '4000' }, 'invalid configuration: METRICS_PORT must differ from PORT (it is a listener of its own) (got "4000")'],
    [{ KEY_STORE: 'vault' }, 'invalid configuration: KEY_STORE must be files or database (got "vault")'],
    [{ KEY_STORE: 'database' }, 'invalid configuration: KEYS_ENCRYPTION_KEY is required when KEY_STORE=database'],
    [
      { KEY_STORE: 'database', KEYS_ENCRYPTION_KEY: 'too-short' },
      expect.stringMatching(/^invalid configuration: KEYS_ENCRYPTION_KEY each entry must be 32 random bytes in base64url \(43 characters\)[^"]*$/u),
    ],
    [{ KEY_ROTATION_INTERVAL: '3600' }, expect.stringMatching(/^invalid configuration: KEY_ROTATION_INTERVAL must be longer than KEY_PUBLISH_LEAD \(3600 s\)/u)],
    [{ KEY_ROTATION_INTERVAL: '5', KEY_PUBLISH_LEAD: '0' }, 'invalid configuration: KEY_ROTATION_INTERVAL must be at least 10 (got "5")'],
    [{ KEY_PUBLISH_LEAD: '-1' }, 'invalid configuration: KEY_PUBLISH_LEAD must be a whole number (got "-1")'],
    [{ TRUST_PROXY: '10.0.0.0/8, nonsense' }, expect.stringMatching(/^invalid configuration: TRUST_PROXY must be/u)],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }, expect.stringMatching(/^invalid configuration: OTEL_EXPORTER_OTLP_ENDPOINT must be an http\(s\) URL such as http:\/\/collector:4318 [^"]*$/u)],
    // credentials belong in OTEL_EXPORTER_OTLP_HEADERS; the value is not echoed
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://user:secret@collector:4318' }, expect.not.stringContaining('secret@')],
    [{ OTEL_SERVICE_NAME: 'sigil issuer' }, 'invalid configuration: OTEL_SERVICE_NAME must be printable ASCII without spaces (got "sigil issuer")'],
  ])('when %j is bad, throws one line naming the variable', (env, message) => {
    expect(() => loadConfig(env, cwd)).toThrow(ConfigError);
    expect(errorMessage(() => loadConfig(env, cwd))).toEqual(message);
  });

  it('when several variables are bad, names each of them in one line', () => {
    expect(() => loadConfig({ PORT: 'x', ACCESS_TOKEN_TTL: 'y' }, cwd)).toThrow(
      'invalid configuration: PORT must be a whole number (got "x"); ACCESS_TOKEN_TTL must be a whole number (got "y")',
    );
  });

  it('when NODE_ENV=production, requires COOKIE_KEYS and an https ISSUER (S14)', () => {
    expect(() => loadConfig({ NODE_ENV: 'production', ISSUER: 'https://auth.example.com' }, cwd)).toThrow(
      'invalid configuration: COOKIE_KEYS is required when NODE_ENV=production',
    );
    const cookieKeys = 'k'.repeat(32);
    expect(() => loadConfig({ NODE_ENV: 'production', ISSUER: 'http://auth.example.com', COOKIE_KEYS: cookieKeys }, cwd)).toThrow(
      'ISSUER must use https when NODE_ENV=production (set ALLOW_INSECURE_ISSUER=true to override)',
    );
    expect(
      loadConfig(
        { NODE_ENV: 'production', ISSUER: 'http://auth.internal', COOKIE_KEYS: cookieKeys, ALLOW_INSECURE_ISSUER: 'true' },
        cwd,
      ).issuer,
    ).toBe('http://auth.internal');
  });

  it('when the CLI reads a production environment, does not ask for serving-only settings', () => {
    expect(loadConfig({ NODE_ENV: 'production' }, cwd, 'admin').production).toBe(true);
  });

  it('never echoes a database URL, a cookie key or an encryption key back in the error', () => {
    expect(errorMessage(() => loadConfig({ KEY_STORE: 'database', KEYS_ENCRYPTION_KEY: 'hunter2' }, cwd))).not.toContain('hunter2');
    expect(errorMessage(() => loadConfig({ DATABASE_URL: 'mysql://user:hunter2@db' }, cwd))).not.toContain('hunter2');
    expect(errorMessage(() => loadConfig({ COOKIE_KEYS: 'hunter2' }, cwd))).not.toContain('hunter2');
  });
});
