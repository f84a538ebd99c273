import net from 'node:net';

import { afterAll, beforeAll } from '@jest/globals';

import { loadConfig, type Config } from '../../src/config.js';
import { createLogger, type Logger } from '../../src/logger.js';
import { startIssuer, type RunningIssuer } from '../../src/server.js';
import { ready, type Backend, type TestDatabase } from './backends.js';

/** A port that was free a moment ago, so that ISSUER can name it before the issuer listens. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface TestIssuer extends RunningIssuer {
  readonly config: Config;
  /** The issuer identifier, also its base URL. */
  readonly issuer: string;
}

/** The environment a test issuer (or a CLI run beside it) sees. */
export function testEnv(database: TestDatabase, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATA_DIR: database.dataDir,
    KEYS_DIR: database.keysDir,
    ...(database.databaseUrl === undefined ? {} : { DATABASE_URL: database.databaseUrl }),
    LOG_LEVEL: 'silent',
    ...extra,
  };
}

export interface TestIssuerOptions {
  /** The logger the issuer is given; by default the issuer's own (stdout) at the configured LOG_LEVEL. */
  readonly logger?: (config: Config) => Logger;
}

/** Boots the real issuer on a loopback port against the suite's database. */
export async function startTestIssuer(database: TestDatabase, extra: Record<string, string> = {}, options: TestIssuerOptions = {}): Promise<TestIssuer> {
  const port = await freePort();
  const config = loadConfig({ PORT: String(port), ISSUER: `http://127.0.0.1:${port}`, ...testEnv(database, extra) });
  const running = await startIssuer(config, (options.logger ?? ((loaded) => createLogger(loaded.logLevel)))(config));
  return { ...running, config, issuer: config.issuer };
}

/**
 * Environment for a suite's issuer: given as is, or made from the suite's fresh database
 * (before the issuer starts: to reach it through something the suite sets up, say).
 */
export type SuiteEnv = Record<string, string> | ((database: TestDatabase) => Promise<Record<string, string>>);

/**
 * A suite's database and issuer: created before its tests, closed and dropped after them.
 * Read `issuer` and `database` inside tests and hooks (they exist once beforeAll has run).
 */
export function issuerSuite(
  backend: Backend,
  extra: SuiteEnv = {},
  options: TestIssuerOptions = {},
): { readonly issuer: TestIssuer; readonly database: TestDatabase } {
  let database: TestDatabase | undefined;
  let issuer: TestIssuer | undefined;
  beforeAll(async () => {
    database = await backend.create();
    issuer = await startTestIssuer(database, typeof extra === 'function' ? await extra(database) : extra, options);
  });
  afterAll(async () => {
    await issuer?.close();
    await database?.drop();
  });
  return {
    get issuer() {
      return ready(issuer);
    },
    get database() {
      return ready(database);
    },
  };
}
