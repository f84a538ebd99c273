import type { Knex } from 'knex';

import { insertReturning, listByCreation } from './rows.js';
import { isStorableKey } from './text.js';
import type { ClientStore, ClientToInsert, ClientWithSecret, GrantType } from '../domain/clients.js';

/** The `clients` table (its trigger announces every change: see changes.ts). */
interface ClientRow {
  id: string;
  name: string;
  secret_hash: string | null;
  grant_types: GrantType[];
  scopes: string[];
  roles: string[];
  redirect_uris: string[];
  resources: string[];
  public: boolean;
  first_party: boolean;
  access_token_ttl: number | null;
  created_at: Date;
}

function toRecord(row: ClientRow): ClientWithSecret {
  return {
    id: row.id,
    name: row.name,
    secretHash: row.secret_hash,
    grants: row.grant_types,
    scopes: row.scopes,
    roles: row.roles,
    redirectUris: row.redirect_uris,
    resources: row.resources,
    public: row.public,
    firstParty: row.first_party,
    accessTokenTtl: row.access_token_ttl,
    createdAt: new Date(row.created_at),
  };
}

/** Registered clients in PostgreSQL (or PGlite). */
export function createClientStore(db: Knex): ClientStore {
  return {
    async insert(client: ClientToInsert) {
      const row = await insertReturning<ClientRow>(db, 'clients', {
        id: client.id,
        name: client.name,
        secret_hash: client.secretHash,
        grant_types: JSON.stringify(client.grants),
        scopes: JSON.stringify(client.scopes),
        roles: JSON.stringify(client.roles),
        redirect_uris: JSON.stringify(client.redirectUris),
        resources: JSON.stringify(client.resources),
        public: client.public,
        first_party: client.firstParty,
        access_token_ttl: client.accessTokenTtl,
      });
      return toRecord(row);
    },

    async list() {
      const rows = await listByCreation<ClientRow>(db, 'clients');
      return rows.map(toRecord);
    },

    async find(id) {
      if (!isStorableKey(id)) return undefined;
      const row = await db<ClientRow>('clients').where({ id }).first();
      return row === undefined ? undefined : toRecord(row);
    },

    async declaredResourceScopes() {
      const rows = await db<ClientRow>('clients')
        .select('resources', 'scopes')
        .whereRaw("grant_types = '[]'::jsonb");
      const declared = new Map<string, string[]>();
      for (const { resources, scopes } of rows) {
        for (const resource of resources) declared.set(resource, [...new Set([...(declared.get(resource) ?? []), ...scopes])]);
      }
      return declared;
    },
  };
}
