import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

import { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe } from '@jest/globals';
import pg from 'pg';

import { embeddedDatabasePath } from '../../src/storage/db.js';

/**
 * The storage back ends every storage and HTTP suite runs on: the embedded database
 * always, and PostgreSQL when TEST_DATABASE_URL is set.
 */
export interface Backend {
  readonly name: 'pglite' | 'postgres';
  /**
   * Creates an isolated, empty database for one suite. `nothingOnDisk`: the embedded back end
   * leaves DATA_DIR unmade (for a test that checks what a first start writes).
   */
  create(options?: { readonly nothingOnDisk?: boolean }): Promise<TestDatabase>;
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

/** The version of the PGlite package the tests run. */
async function pgliteVersion(): Promise<string> {
  let dir = path.dirname(createRequire(import.meta.url).resolve('@electric-sql/pglite'));
  for (;;) {
    const manifest = (await fs.readFile(path.join(dir, 'package.json'), 'utf8').then(JSON.parse, () => undefined)) as { name?: string; version?: string } | undefined;
    if (manifest?.name === '@electric-sql/pglite' && manifest.version !== undefined) return manifest.version;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('cannot find the version of @electric-sql/pglite');
    dir = parent;
  }
}

/** Makes every directory under (and including) `dir` 0700 and every file 0600, as the issuer keeps its data. */
async function ownerOnly(dir: string): Promise<void> {
  await fs.chmod(dir, 0o700);
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    const entryPath = path.join(dir, entry.name);
    if (entry.isDirectory()) await ownerOnly(entryPath);
    else await fs.chmod(entryPath, 0o600);
  }
}

let template: Promise<string> | undefined;

/**
 * An empty, freshly initialised PGlite cluster, made once per machine and PGlite version.
 * PGlite's initdb costs several seconds of CPU, paid by every suite that starts on an empty
 * DATA_DIR; a suite gets a copy of these files instead, the same files its first start would
 * have written (no schema: migrations still run on it). Made in a directory of its own and
 * renamed into place, so that jest workers racing to make it never see half of one.
 */
function pgliteTemplate(): Promise<string> {
  template ??= (async () => {
    const final = path.join(os.tmpdir(), `sigil-pglite-template-${await pgliteVersion()}`);
    if (await fs.stat(path.join(final, 'PG_VERSION')).then(() => true, () => false)) return final;
    const making = await temporaryDir('pglite-template');
    const cluster = path.join(making, 'pgdata');
    const db = new PGlite(cluster);
    await db.waitReady;
    await db.close();
    await ownerOnly(cluster);
    await fs.rename(cluster, final).catch(async (error: NodeJS.ErrnoException) => {
      // another worker made it first
      if (error.code !== 'ENOTEMPTY' && error.code !== 'EEXIST') throw error;
    });
    await fs.rm(making, { recursive: true, force: true });
    return final;
  })();
  return template;
}

const pglite: Backend = {
  name: 'pglite',
  async create({ nothingOnDisk = false } = {}) {
    const { root, dataDir, keysDir } = await directories();
    if (!nothingOnDisk) {
      await fs.mkdir(dataDir, { mode: 0o700 });
      await fs.cp(await pgliteTemplate(), embeddedDatabasePath(dataDir), { recursive: true });
    }
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
export function databaseSuite(backend: Backend, options?: { readonly nothingOnDisk?: boolean }): { readonly database: TestDatabase } {
  let database: TestDatabase | undefined;
  beforeAll(async () => {
    database = await backend.create(options);
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
