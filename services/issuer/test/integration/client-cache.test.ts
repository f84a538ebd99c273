import { describe, expect, it } from '@jest/globals';
import type { Knex } from 'knex';
import pg from 'pg';

import { backends } from '../support/backends.js';
import { basicAuth, eventually, request } from '../support/http.js';
import { issuerSuite } from '../support/issuer.js';
import { registerClient } from '../support/oauth.js';
import { recordQueries } from '../support/storage.js';

/** Counts the issuer's own reads of the clients table (its knex instance runs in this process). */
/**
 * The issuer's look-ups of one client by id (not the reads of the resource scopes the services'
 * clients declare, which follow the same notifications but are another cache).
 */
function clientReads(db: Knex): { readonly count: number; stop(): void } {
  const reads = recordQueries(db, (sql) => /from "clients" where "id" = /u.test(sql));
  return {
    get count() {
      return reads.statements.length;
    },
    stop: reads.stop,
  };
}

describe.each(backends)('client lookups are cached and follow every change ($name)', (backend) => {
  const suite = issuerSuite(backend);

  /** SQL from outside the issuer: another connection on PostgreSQL; the owner's one session on PGlite. */
  async function externally(sql: string, bindings: string[]): Promise<void> {
    const url = suite.database.databaseUrl;
    if (url === undefined) {
      await suite.issuer.db.raw(sql, bindings);
      return;
    }
    const other = new pg.Client({ connectionString: url });
    await other.connect();
    try {
      let position = 0;
      await other.query(
        sql.replaceAll('?', () => `$${(position += 1)}`),
        bindings,
      );
    } finally {
      await other.end();
    }
  }

  async function machineClient() {
    const client = await registerClient(suite.issuer.stores.clients, { name: 'm', grants: ['client_credentials'], resources: ['https://api.example.com'] });
    const token = () =>
      request(`${suite.issuer.url}/token`, {
        method: 'POST',
        headers: { authorization: basicAuth(client.id, client.secret), 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=client_credentials',
      });
    return { id: client.id, token };
  }

  it('reads a client from the database once for many token requests', async () => {
    const reads = clientReads(suite.issuer.db);
    /** Token requests until one reads nothing: how many reads it took to get there. */
    const settle = async (client: Awaited<ReturnType<typeof machineClient>>) => {
      const start = reads.count;
      await eventually(async () => {
        const before = reads.count;
        expect((await client.token()).status).toBe(200);
        return reads.count === before ? true : undefined;
      }, 5000, 20);
      return reads.count - start;
    };
    try {
      // until the issuer's notifications arrive (a busy machine may take a moment after start),
      // it reads on every request: settle a first client, so they surely do
      await settle(await machineClient());
      // then a new client is read once, or twice when the notification of its own creation
      // arrives after the first read and drops it
      const client = await machineClient();
      expect(await settle(client)).toBeLessThanOrEqual(2);
      const settled = reads.count;
      for (let i = 0; i < 5; i += 1) expect((await client.token()).status).toBe(200);
      expect(reads.count).toBe(settled);
    } finally {
      reads.stop();
    }
  });

  it('applies a change written straight to the database to the next requests', async () => {
    const client = await machineClient();
    expect((await client.token()).status).toBe(200);
    await externally(`UPDATE clients SET grant_types = '["password"]' WHERE id = ?`, [client.id]);
    const refused = await eventually(async () => {
      const response = await client.token();
      return response.status === 400 ? response : undefined;
    }, 2000, 20);
    expect(JSON.parse(refused.body)).toMatchObject({ error: 'unauthorized_client' });
  });

  it('refuses a client deleted from the database', async () => {
    const client = await machineClient();
    expect((await client.token()).status).toBe(200);
    await externally('DELETE FROM clients WHERE id = ?', [client.id]);
    const refused = await eventually(async () => {
      const response = await client.token();
      return response.status === 401 ? response : undefined;
    }, 2000, 20);
    expect(JSON.parse(refused.body)).toEqual({ error: 'invalid_client', error_description: 'client authentication failed' });
  });

  it('refuses a client after TRUNCATE', async () => {
    const client = await machineClient();
    expect((await client.token()).status).toBe(200);
    await externally('TRUNCATE clients', []);
    await eventually(async () => ((await client.token()).status === 401 ? true : undefined), 2000, 20);
  });

  if (backend.name === 'postgres') {
    it('reads the database on every request while its notification connection is down, and caches again once it is back', async () => {
      const client = await machineClient();
      expect((await client.token()).status).toBe(200);
      const reads = clientReads(suite.issuer.db);
      try {
        // cut the issuer's LISTEN connection, then change the client at once: the change must apply
        await externally(
          "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()",
          [],
        );
        await eventually(async () => {
          const before = reads.count;
          await client.token();
          return reads.count > before ? true : undefined;
        }, 2000, 20);
        await externally(`UPDATE clients SET grant_types = '["password"]' WHERE id = ?`, [client.id]);
        expect((await client.token()).status).toBe(400);

        // reconnected (first retry after 500 ms): one read, then memory again
        await externally(`UPDATE clients SET grant_types = '["client_credentials"]' WHERE id = ?`, [client.id]);
        await eventually(async () => {
          await client.token();
          const before = reads.count;
          expect((await client.token()).status).toBe(200);
          return reads.count === before ? true : undefined;
        }, 5000, 100);
      } finally {
        reads.stop();
      }
    });
  }
});
