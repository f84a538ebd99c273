import type { Knex } from 'knex';

import { insertReturning, listByCreation, lockRow, pageByCreation } from './rows.js';
import { isStorableKey } from './text.js';
import type { ApiKeyRecord, ApiKeyStore, ApiKeyToInsert, ApiKeyWithSecret } from '../domain/api-keys.js';

/** The `api_keys` table. */
interface ApiKeyRow {
  id: string;
  name: string;
  owner: string | null;
  secret_hash: string;
  scopes: string[];
  roles: string[];
  resources: string[];
  expires_at: Date | null;
  last_used_at: Date | null;
  revoked_at: Date | null;
  created_at: Date;
}

const date = (value: Date | null) => (value === null ? null : new Date(value));

function toRecord(row: ApiKeyRow): ApiKeyWithSecret {
  return {
    id: row.id,
    name: row.name,
    owner: row.owner,
    secretHash: row.secret_hash,
    scopes: row.scopes,
    roles: row.roles,
    resources: row.resources,
    expiresAt: date(row.expires_at),
    lastUsedAt: date(row.last_used_at),
    revokedAt: date(row.revoked_at),
    createdAt: new Date(row.created_at),
  };
}

function withoutSecret({ secretHash: _secretHash, ...record }: ApiKeyWithSecret): ApiKeyRecord {
  return record;
}

/** API keys in PostgreSQL (or PGlite). */
export function createApiKeyStore(db: Knex): ApiKeyStore {
  return {
    async insert(apiKey: ApiKeyToInsert) {
      const row = await insertReturning<ApiKeyRow>(db, 'api_keys', {
        id: apiKey.id,
        name: apiKey.name,
        owner: apiKey.owner,
        secret_hash: apiKey.secretHash,
        scopes: JSON.stringify(apiKey.scopes),
        roles: JSON.stringify(apiKey.roles),
        resources: JSON.stringify(apiKey.resources),
        expires_at: apiKey.expiresAt,
      });
      return withoutSecret(toRecord(row));
    },

    async list() {
      const rows = await listByCreation<ApiKeyRow>(db, 'api_keys');
      return rows.map((row) => withoutSecret(toRecord(row)));
    },

    async page(query) {
      const { items, next } = await pageByCreation<ApiKeyRow>(db, 'api_keys', query);
      return { items: items.map((row) => withoutSecret(toRecord(row))), next };
    },

    lock: async (id) => (await lockRow(db, 'api_keys', id)) !== undefined,

    async revoke(id) {
      const [row] = await db('api_keys')
        .where({ id })
        .update({ revoked_at: db.raw('coalesce(revoked_at, now())') })
        .returning<ApiKeyRow[]>('*');
      return row === undefined ? undefined : withoutSecret(toRecord(row));
    },

    async setResources(id, resources) {
      const [row] = await db('api_keys')
        .where({ id })
        .update({ resources: JSON.stringify(resources) })
        .returning<ApiKeyRow[]>('*');
      return row === undefined ? undefined : withoutSecret(toRecord(row));
    },

    async replaceSecret(id, secretHash) {
      const [row] = await db('api_keys').where({ id }).whereNull('revoked_at').update({ secret_hash: secretHash }).returning<ApiKeyRow[]>('*');
      return row === undefined ? undefined : withoutSecret(toRecord(row));
    },

    async find(id) {
      // a key carrying U+0000 names none (text.ts): PostgreSQL would refuse it
      if (!isStorableKey(id)) return undefined;
      const row = await db<ApiKeyRow>('api_keys').where({ id }).first();
      return row === undefined ? undefined : toRecord(row);
    },

    async recordUse(id) {
      const written = await db('api_keys')
        .where({ id })
        .andWhere((stale) => stale.whereNull('last_used_at').orWhereRaw(`last_used_at < now() - interval '1 minute'`))
        .update({ last_used_at: db.fn.now() });
      return written > 0;
    },
  };
}
