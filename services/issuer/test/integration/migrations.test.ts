import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from '@jest/globals';

import { migrate, migrationsDirectory, openDatabase } from '../../src/storage/db.js';
import { createReplayStore } from '../../src/storage/replays.js';
import { backends, type Backend } from '../support/backends.js';

const MIGRATIONS = readdirSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../migrations')).filter((file) => file.endsWith('.js'));

/** Opens `count` databases on a fresh one, runs `work` on them, and closes and drops everything. */
async function withDatabases(backend: Backend, count: number, work: (knexes: Awaited<ReturnType<typeof openDatabase>>[]) => Promise<void>): Promise<void> {
  const database = await backend.create();
  const opened = [];
  try {
    for (let i = 0; i < count; i += 1) opened.push(await openDatabase({ databaseUrl: database.databaseUrl, dataDir: database.dataDir }));
    await work(opened);
  } finally {
    await Promise.all(opened.map((each) => each.close()));
    await database.drop();
  }
}

const cases = {
  pglite: {
    title: 'when migrations run again, nothing more is applied',
    run: (backend: Backend) =>
      withDatabases(backend, 1, async (databases) => {
        for (const database of databases) {
          expect(await migrate(database.knex)).toEqual(MIGRATIONS);
          expect(await migrate(database.knex)).toEqual([]);
        }
      }),
  },
  postgres: {
    title: 'when several processes migrate a fresh database at once, all start and each migration is applied once',
    async run(backend: Backend) {
      // the race is on knex's own tables, created before its lock exists: a few rounds to meet it
      for (let round = 0; round < 3; round += 1) {
        await withDatabases(backend, 4, async (databases) => {
          const applied = await Promise.all(databases.map((database) => migrate(database.knex)));
          expect(applied.flat().sort()).toEqual(MIGRATIONS);
          for (const database of databases) {
            const rows = await database.knex('knex_migrations').select<{ name: string }[]>('name');
            expect(rows.map((row) => row.name).sort()).toEqual(MIGRATIONS);
          }
        });
      }
    },
  },
};

describe.each(backends)('migrations ($name)', (backend) => {
  it(cases[backend.name].title, async () => {
    await cases[backend.name].run(backend);
  }, 150_000);
});

describe.each(backends)('migration 20261201002000_api_key_resources ($name)', (backend) => {
  it('when applied to a database with API keys, each existing key gets an empty resources list (refused until given some)', async () => {
    await withDatabases(backend, 1, async (databases) => {
      const [{ knex }] = databases as [Awaited<ReturnType<typeof openDatabase>>];
      await migrate(knex);
      await knex.migrate.down({ directory: migrationsDirectory, loadExtensions: ['.js'], tableName: 'knex_migrations', name: '20261201002000_api_key_resources.js' });
      await knex('api_keys').insert({ id: 'a'.repeat(32), name: 'old', secret_hash: 'x', scopes: JSON.stringify([]), roles: JSON.stringify([]) });
      expect(await migrate(knex)).toEqual(['20261201002000_api_key_resources.js']);
      expect(await knex('api_keys').select('id', 'resources')).toEqual([{ id: 'a'.repeat(32), resources: [] }]);
    });
  }, 150_000);
});

describe.each(backends)('migration 20261201005000_client_revocations ($name)', (backend) => {
  it('when undone, the client revocations go and the kind is refused again; applied again, it is accepted', async () => {
    await withDatabases(backend, 1, async (databases) => {
      const [{ knex }] = databases as [Awaited<ReturnType<typeof openDatabase>>];
      await migrate(knex);
      const revokedClient = { kind: 'client', value: 'c'.repeat(32), expires_at: new Date(Date.now() + 60_000) };
      await knex('revocations').insert([revokedClient, { kind: 'jti', value: 'kept', expires_at: new Date(Date.now() + 60_000) }]);
      await knex.migrate.down({ directory: migrationsDirectory, loadExtensions: ['.js'], tableName: 'knex_migrations', name: '20261201005000_client_revocations.js' });
      expect(await knex('revocations').select('kind', 'value')).toEqual([{ kind: 'jti', value: 'kept' }]);
      await expect(knex('revocations').insert(revokedClient)).rejects.toThrow(/revocations_kind/u);
      expect(await migrate(knex)).toEqual(['20261201005000_client_revocations.js']);
      await knex('revocations').insert(revokedClient);
      expect(await knex('revocations').where({ kind: 'client' }).select('value')).toEqual([{ value: revokedClient.value }]);
    });
  }, 150_000);
});

describe.each(backends)('migration 20261201007000_replay_detections ($name)', (backend) => {
  it('when applied, the unexpired jtis recorded in oidc_payloads move to replay_detections (still replays), the expired ones go; undone, they move back', async () => {
    await withDatabases(backend, 1, async (databases) => {
      const [{ knex }] = databases as [Awaited<ReturnType<typeof openDatabase>>];
      await migrate(knex);
      const name = '20261201007000_replay_detections.js';
      await knex.migrate.down({ directory: migrationsDirectory, loadExtensions: ['.js'], tableName: 'knex_migrations', name });
      const digest = (jti: string) => createHash('sha256').update(JSON.stringify(['client-1', jti])).digest();
      const recorded = (jti: string, seconds: number) => ({ type: 'ReplayDetection', id: digest(jti).toString('base64url'), payload: JSON.stringify({ iss: 'client-1' }), expires_at: new Date(Date.now() + seconds * 1000) });
      await knex('oidc_payloads').insert([recorded('live', 60), recorded('stale', -60)]);
      expect(await migrate(knex)).toEqual([name]);
      expect(await knex('oidc_payloads').where({ type: 'ReplayDetection' })).toEqual([]);
      const replays = createReplayStore(knex);
      expect(await replays.firstUse(digest('live'), new Date(Date.now() + 60_000))).toBe(false);
      expect(Number((await knex('replay_detections').count<{ count: string | number }[]>('* as count'))[0]?.count)).toBe(1);
      await knex.migrate.down({ directory: migrationsDirectory, loadExtensions: ['.js'], tableName: 'knex_migrations', name });
      expect(await knex('oidc_payloads').where({ type: 'ReplayDetection' }).pluck('id')).toEqual([digest('live').toString('base64url')]);
    });
  }, 150_000);
});
