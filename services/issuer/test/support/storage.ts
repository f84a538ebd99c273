import { afterAll, beforeAll } from '@jest/globals';
import type { Knex } from 'knex';

import { migrate, openDatabase, type Database } from '../../src/storage/db.js';
import { createStores, type Stores } from '../../src/storage/index.js';

import { ready, type Backend, type TestDatabase } from './backends.js';

/**
 * A suite's storage without an issuer: a fresh database on `backend`, opened and migrated
 * before its tests, with its stores; closed and dropped after them. Read `database` and
 * `stores` inside tests and hooks.
 */
export function storageSuite(backend: Backend): { readonly database: Database; readonly stores: Stores } {
  let testDatabase: TestDatabase | undefined;
  let database: Database | undefined;
  let stores: Stores | undefined;
  beforeAll(async () => {
    testDatabase = await backend.create();
    database = await openDatabase({ databaseUrl: testDatabase.databaseUrl, dataDir: testDatabase.dataDir });
    await migrate(database.knex);
    stores = createStores(database.knex);
  });
  afterAll(async () => {
    await database?.close();
    await testDatabase?.drop();
  });
  return {
    get database() {
      return ready(database);
    },
    get stores() {
      return ready(stores);
    },
  };
}

/** Records the SQL the issuer's own knex runs (it runs in this process) until `stop`. */
export function recordQueries(db: Knex, keep: (sql: string) => boolean = () => true): { readonly statements: readonly string[]; stop(): void } {
  const statements: string[] = [];
  const onQuery = (query: { sql?: string }) => {
    if (keep(query.sql ?? '')) statements.push(query.sql ?? '');
  };
  db.on('query', onQuery);
  return { statements, stop: () => db.off('query', onQuery) };
}
