import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe } from '@jest/globals';
import pg from 'pg';

/**
 * The storage back ends every storage and HTTP suite runs on: the embedded database
 * always, and PostgreSQL when TEST_DATABASE_URL is set.
 */
export interface Backend {
  readonly name: 'pglite' | 'postgres';
  /** Creates an isolated, empty database for one suite. */
  create(): Promise<TestDatabase>;
}

export interface TestDatabase {
  /** undefined for the embedded back end: the issuer uses `dataDir`. */
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
  readonly keysDir: string;
  /** Removes the database and the suite's directories. */
  drop(): Promise<void>;
}

export async function temporaryDir(prefix: string): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), `sigil-${prefix}-`));
}

async function directories() {
  const root = await temporaryDir('test');
  return { root, dataDir: path.join(root, 'data'), keysDir: path.join(root, 'keys') };
}

const pglite: Backend = {
  name: 'pglite',
  async create() {
    const { root, dataDir, keysDir } = await directories();
    return { databaseUrl: undefined, dataDir, keysDir, drop: () => fs.rm(root, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 }) };
  },
};

function postgres(adminUrl: string): Backend {
  return {
    name: 'postgres',
    async create() {
      const { root, dataDir, keysDir } = await directories();
      const name = `sigil_test_${randomBytes(6).toString('hex')}`;
      const admin = new pg.Client({ connectionString: adminUrl });
      await admin.connect();
      await admin.query(`CREATE DATABASE ${name}`);
      await admin.end();
      const url = new URL(adminUrl);
      url.pathname = `/${name}`;
      return {
        databaseUrl: url.toString(),
        dataDir,
        keysDir,
        async drop() {
          const client = new pg.Client({ connectionString: adminUrl });
          await client.connect();
          await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
          await client.end();
          await fs.rm(root, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
        },
      };
    },
  };
}

export const backends: readonly Backend[] = [
  pglite,
  ...(process.env['TEST_DATABASE_URL'] ? [postgres(process.env['TEST_DATABASE_URL'])] : []),
];

/**
 * `describe.each` over the PostgreSQL back end only: skipped (not an error, as an empty
 * `describe.each` would be) when TEST_DATABASE_URL is not set, so `npm test` passes on PGlite alone.
 */
export const describeOnPostgres = (() => {
  const postgresOnly = backends.filter((backend) => backend.name === 'postgres');
  return postgresOnly.length > 0 ? describe.each(postgresOnly) : describe.skip.each([{ name: 'postgres' } as Backend]);
})();

/** The embedded back end, tested everywhere. */
export const embedded: Backend = pglite;

/** The value a suite's `beforeAll` set, read once it has run. */
export function ready<T>(value: T | undefined): T {
  if (value === undefined) throw new Error('the suite has not started');
  return value;
}

/**
 * A suite's own empty database (no issuer): created before its tests, dropped after them,
 * for suites that start and stop issuers or processes themselves. Read `database` inside
 * tests and hooks.
 */
export function databaseSuite(backend: Backend): { readonly database: TestDatabase } {
  let database: TestDatabase | undefined;
  beforeAll(async () => {
    database = await backend.create();
  });
  afterAll(async () => {
    await database?.drop();
  });
  return {
    get database() {
      return ready(database);
    },
  };
}
