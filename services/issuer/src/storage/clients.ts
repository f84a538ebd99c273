import type { Knex } from 'knex';

import type { ClientKeySet } from '../domain/client-keys.js';
import { TOKEN_EXCHANGE, type ClientAuthMethod, type ClientSettings, type ClientStore, type ClientToInsert, type ClientWithSecret, type GrantType } from '../domain/clients.js';
import { ENDED_GRANT_COLUMNS, recordEndedGrantsSql, recordRevokedClient } from './revocations.js';
import { insertReturning, listByCreation, lockRow, pageByCreation } from './rows.js';
import { isStorableKey } from './text.js';

/** The `clients` table (its trigger announces every change: see changes.ts). */
interface ClientRow {
  id: string;
  name: string;
  secret_hash: string | null;
  grant_types: GrantType[];
  scopes: string[];
  roles: string[];
  redirect_uris: string[];
  post_logout_redirect_uris: string[];
  resources: string[];
  public: boolean;
  first_party: boolean;
  access_token_ttl: number | null;
  require_dpop: boolean;
  may_exchange_for: string[];
  created_at: Date;
  disabled_at: Date | null;
  secret_rotated_at: Date | null;
  previous_secret_hash: string | null;
  previous_secret_expires_at: Date | null;
  auth: ClientAuthMethod | null;
  jwks: ClientKeySet | null;
  jwks_uri: string | null;
}

const dateOrNull = (value: Date | null) => (value === null ? null : new Date(value));

function toRecord(row: ClientRow): ClientWithSecret {
  return {
    id: row.id,
    name: row.name,
    secretHash: row.secret_hash,
    grants: row.grant_types,
    scopes: row.scopes,
    roles: row.roles,
    redirectUris: row.redirect_uris,
    postLogoutRedirectUris: row.post_logout_redirect_uris,
    resources: row.resources,
    public: row.public,
    firstParty: row.first_party,
    accessTokenTtl: row.access_token_ttl,
    requireDpop: row.require_dpop,
    mayExchangeFor: row.may_exchange_for,
    createdAt: new Date(row.created_at),
    disabledAt: dateOrNull(row.disabled_at),
    secretRotatedAt: dateOrNull(row.secret_rotated_at),
    previousSecretHash: row.previous_secret_hash,
    previousSecretExpiresAt: dateOrNull(row.previous_secret_expires_at),
    hasSecret: row.secret_hash !== null,
    auth: row.auth,
    jwks: row.jwks,
    jwksUri: row.jwks_uri,
  };
}

/** The columns of a client's settings. */
function settingsColumns(client: ClientSettings): Record<string, unknown> {
  return {
    name: client.name,
    grant_types: JSON.stringify(client.grants),
    scopes: JSON.stringify(client.scopes),
    roles: JSON.stringify(client.roles),
    redirect_uris: JSON.stringify(client.redirectUris),
    post_logout_redirect_uris: JSON.stringify(client.postLogoutRedirectUris),
    resources: JSON.stringify(client.resources),
    public: client.public,
    first_party: client.firstParty,
    access_token_ttl: client.accessTokenTtl,
    auth: client.auth,
    jwks: client.jwks === null ? null : JSON.stringify(client.jwks),
    jwks_uri: client.jwksUri,
    require_dpop: client.requireDpop,
    may_exchange_for: JSON.stringify(client.mayExchangeFor),
  };
}

/** A client that authenticates with its keys holds no secret: taking up private_key_jwt drops both digests. */
function secretColumns(client: ClientSettings): Record<string, unknown> {
  return client.auth === 'private_key_jwt' ? { secret_hash: null, previous_secret_hash: null, previous_secret_expires_at: null } : {};
}

/**
 * Deletes every engine instance the client holds: its grants (each recorded ended, so the access
 * tokens they issued read revoked), then what was issued to it or under them (refresh tokens,
 * codes, interactions). The grants go first, in a statement of their own: a refresh token being
 * stored under one of them holds it until it commits (storage/payloads.ts LIVE_GRANT), so this
 * waits for it, and the next statement's fresh snapshot sees and deletes it.
 */
async function revokeEverythingOf(trx: Knex.Transaction, clientId: string): Promise<void> {
  const { rows } = await trx.raw<{ rows: { id: string }[] }>(
    `WITH ended AS (DELETE FROM oidc_payloads WHERE type = 'Grant' AND payload->>'clientId' = ? RETURNING ${ENDED_GRANT_COLUMNS}), ${recordEndedGrantsSql('ended')}
     SELECT id FROM ended`,
    [clientId],
  );
  await trx.raw(`DELETE FROM oidc_payloads WHERE payload->>'clientId' = ? OR grant_id = ANY(?::text[])`, [clientId, rows.map((row) => row.id)]);
}

/** Registered clients in PostgreSQL (or PGlite). */
export function createClientStore(db: Knex): ClientStore {
  return {
    async insert(client: ClientToInsert) {
      const row = await insertReturning<ClientRow>(db, 'clients', { id: client.id, secret_hash: client.secretHash, ...settingsColumns(client) });
      return toRecord(row);
    },

    async list() {
      const rows = await listByCreation<ClientRow>(db, 'clients');
      return rows.map(toRecord);
    },

    async page(query) {
      const { items, next } = await pageByCreation<ClientRow>(db, 'clients', query);
      return { items: items.map(toRecord), next };
    },

    lock: async (id) => (await lockRow(db, 'clients', id)) !== undefined,

    async find(id) {
      if (!isStorableKey(id)) return undefined;
      const row = await db<ClientRow>('clients').where({ id }).first();
      return row === undefined ? undefined : toRecord(row);
    },

    update: (id, change) =>
      db.transaction(async (trx) => {
        if (!isStorableKey(id)) return undefined;
        const row = await trx<ClientRow>('clients').where({ id }).forUpdate().first();
        if (row === undefined) return undefined;
        const settings = change(toRecord(row));
        const [updated] = await trx('clients')
          .where({ id })
          .update({ ...settingsColumns(settings), ...secretColumns(settings), updated_at: trx.fn.now() })
          .returning<ClientRow[]>('*');
        return updated === undefined ? undefined : toRecord(updated);
      }),

    setDisabled: (id, disabled) =>
      db.transaction(async (trx) => {
        if (!isStorableKey(id)) return undefined;
        const before = await trx<ClientRow>('clients').where({ id }).forUpdate().first('disabled_at');
        if (before === undefined) return undefined;
        const [row] = await trx('clients')
          .where({ id })
          .update({ disabled_at: disabled ? trx.raw('coalesce(disabled_at, CURRENT_TIMESTAMP)') : null, updated_at: trx.fn.now() })
          .returning<ClientRow[]>('*');
        if (row === undefined) return undefined;
        // on enabling too: a token request that read the client just before it was disabled may
        // have stored a grant after the revocation; no grant of a disabled client may outlive it
        if (disabled || before.disabled_at !== null) await revokeEverythingOf(trx, id);
        // and every access token issued to it so far, client credentials ones (no grant) included;
        // enabling records nothing, so what was issued before the disabling stays refused
        if (disabled) await recordRevokedClient(trx, id);
        return toRecord(row);
      }),

    delete: (id) =>
      db.transaction(async (trx) => {
        if (!isStorableKey(id)) return undefined;
        const [row] = await trx('clients').where({ id }).delete().returning<ClientRow[]>('*');
        if (row === undefined) return undefined;
        await revokeEverythingOf(trx, id);
        await recordRevokedClient(trx, id);
        return toRecord(row);
      }),

    async rotateSecret(id, secretHash, graceSeconds) {
      if (!isStorableKey(id)) return undefined;
      const grace = Math.max(0, Math.floor(graceSeconds));
      const { rows } = await db.raw<{ rows: ClientRow[] }>(
        `UPDATE clients SET
           previous_secret_hash = CASE WHEN ?::integer > 0 THEN secret_hash END,
           previous_secret_expires_at = CASE WHEN ?::integer > 0 AND secret_hash IS NOT NULL THEN CURRENT_TIMESTAMP + ?::integer * interval '1 second' END,
           secret_hash = ?, secret_rotated_at = CURRENT_TIMESTAMP, updated_at = CURRENT_TIMESTAMP
         WHERE id = ? AND NOT public AND auth IS DISTINCT FROM 'private_key_jwt'
         RETURNING *`,
        [grace, grace, grace, secretHash, id],
      );
      const row = rows[0];
      return row === undefined ? undefined : toRecord(row);
    },

    // one statement: every token request needs both maps when they are not cached (oidc/resource-scopes.ts)
    async resourcePolicy() {
      const rows = await db<ClientRow>('clients')
        .select('resources', 'scopes', 'grant_types', 'may_exchange_for')
        .whereRaw("grant_types = '[]'::jsonb OR grant_types @> jsonb_build_array(?::text)", [TOKEN_EXCHANGE]);
      const declared = new Map<string, string[]>();
      const exchangeTargets = new Map<string, string[]>();
      const merge = (into: Map<string, string[]>, resources: readonly string[], values: readonly string[]) => {
        for (const resource of resources) into.set(resource, [...new Set([...(into.get(resource) ?? []), ...values])]);
      };
      for (const { resources, scopes, grant_types: grants, may_exchange_for: targets } of rows) {
        // a service's own client may exchange the tokens it is sent (RFC 8693) and still declare its audience
        if (grants.length === 0 || (grants.length === 1 && grants[0] === TOKEN_EXCHANGE)) merge(declared, resources, scopes);
        if (grants.includes(TOKEN_EXCHANGE) && targets.length > 0) merge(exchangeTargets, resources, targets);
      }
      return { declared, exchangeTargets };
    },
  };
}
