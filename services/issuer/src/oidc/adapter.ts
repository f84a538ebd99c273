import type { Knex } from 'knex';
import { errors, type Adapter, type AdapterFactory, type AdapterPayload } from 'oidc-provider';

import { findClientWithSecret, type ClientWithSecret } from '../domain/clients.js';
import { isLoopbackHost } from '../domain/validation.js';
import type { ClientCache } from './client-cache.js';
import { OIDC_SCOPES } from './resource-servers.js';

interface PayloadRow {
  payload: AdapterPayload;
  expires_at: Date | null;
  consumed_at: Date | null;
}

const TABLE = 'oidc_payloads';

function epochSeconds(date: Date): number {
  return Math.floor(date.getTime() / 1000);
}

/**
 * Stores one oidc-provider model (Session, Interaction, AuthorizationCode, RefreshToken,
 * Grant, …) in `oidc_payloads`. The engine's storage contract, method by method, is in
 * oidc-provider's `example/my_adapter.js`; rows past `expires_at` are treated as absent
 * and removed by the sweeper.
 */
export class KnexPayloadAdapter implements Adapter {
  constructor(
    private readonly db: Knex,
    private readonly type: string,
  ) {}

  /** Inserts or replaces the instance (every column, so nothing of a previous one survives); `expiresIn` is in seconds. */
  async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
    await this.db.raw(
      `INSERT INTO ${TABLE} (type, id, payload, grant_id, uid, user_code, expires_at, consumed_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, NULL)
       ON CONFLICT (type, id) DO UPDATE SET payload = EXCLUDED.payload, grant_id = EXCLUDED.grant_id, uid = EXCLUDED.uid,
         user_code = EXCLUDED.user_code, expires_at = EXCLUDED.expires_at, consumed_at = NULL`,
      [
        this.type,
        id,
        JSON.stringify(payload),
        payload.grantId ?? null,
        payload.uid ?? null,
        payload.userCode ?? null,
        expiresIn === undefined ? null : new Date(Date.now() + expiresIn * 1000),
      ],
    );
  }

  find(id: string): Promise<AdapterPayload | undefined> {
    return this.findBy('id', id);
  }

  findByUid(uid: string): Promise<AdapterPayload | undefined> {
    return this.findBy('uid', uid);
  }

  findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    return this.findBy('user_code', userCode);
  }

  /**
   * Marks the instance consumed; later finds return it with `consumed` set. Atomic: of two
   * requests racing with the same code or refresh token, exactly one consumes it. The loser
   * is a reuse (RFC 9700 §4.14.2, §4.1.3 of RFC 6749): the whole grant is revoked and the
   * request refused.
   */
  async consume(id: string): Promise<void> {
    const consumed = await this.db.raw<{ rows: unknown[] }>(
      `UPDATE ${TABLE} SET consumed_at = CURRENT_TIMESTAMP WHERE type = ? AND id = ? AND consumed_at IS NULL RETURNING id`,
      [this.type, id],
    );
    if (consumed.rows.length > 0) return;
    const row = await this.db(TABLE).select<{ grant_id: string | null }[]>('grant_id').where({ type: this.type, id }).first();
    if (row?.grant_id) await revokeGrant(this.db, row.grant_id);
    throw new errors.InvalidGrant(`${this.type === 'RefreshToken' ? 'refresh token' : 'grant'} already used`);
  }

  async destroy(id: string): Promise<void> {
    await this.db(TABLE).where({ type: this.type, id }).delete();
  }

  /** Removes every instance of this model that belongs to the grant (called once per model). */
  async revokeByGrantId(grantId: string): Promise<void> {
    await this.db(TABLE).where({ type: this.type, grant_id: grantId }).delete();
  }

  // the three lookups the engine makes on every token request: plain SQL, no query builder on the hot path
  private async findBy(column: 'id' | 'uid' | 'user_code', value: string): Promise<AdapterPayload | undefined> {
    const { rows } = await this.db.raw<{ rows: PayloadRow[] }>(
      `SELECT payload, expires_at, consumed_at FROM ${TABLE} WHERE type = ? AND ${column} = ? LIMIT 1`,
      [this.type, value],
    );
    const row = rows[0];
    if (row === undefined) return undefined;
    if (row.expires_at !== null && new Date(row.expires_at).getTime() <= Date.now()) return undefined;
    return row.consumed_at === null ? row.payload : { ...row.payload, consumed: epochSeconds(new Date(row.consumed_at)) };
  }
}

/** Deletes a grant and everything issued under it, whatever the model. */
async function revokeGrant(db: Knex, grantId: string): Promise<void> {
  await db(TABLE)
    .where({ grant_id: grantId })
    .orWhere((query) => query.where({ type: 'Grant', id: grantId }))
    .delete();
}

/** Client metadata (RFC 7591 names plus Sigil's extra members) the engine validates. */
export function clientMetadata(client: ClientWithSecret): AdapterPayload {
  const loopbackOrNative = client.redirectUris.every((uri) => {
    const url = new URL(uri);
    return url.protocol !== 'https:' && (url.protocol !== 'http:' || isLoopbackHost(url.hostname));
  });
  return {
    client_id: client.id,
    client_name: client.name,
    // the SHA-256 digest: compareClientSecret is overridden to hash the presented secret
    ...(client.secretHash === null ? {} : { client_secret: client.secretHash }),
    token_endpoint_auth_method: client.public ? 'none' : 'client_secret_basic',
    grant_types: [...client.grants],
    response_types: client.grants.includes('authorization_code') ? ['code'] : [],
    redirect_uris: [...client.redirectUris],
    // a public client whose redirect URIs are all loopback or private-use schemes is a
    // native app: only then may a loopback port vary (RFC 8252 §7.3, RFC 9700 §4.1.3)
    application_type: client.public && client.redirectUris.length > 0 && loopbackOrNative ? 'native' : 'web',
    // the engine only accepts its own (OpenID) scopes here; resource scopes live in allowed_scopes
    scope: client.scopes.filter((scope) => OIDC_SCOPES.has(scope)).join(' ') || undefined,
    allowed_scopes: [...client.scopes],
    roles: [...client.roles],
    resources: [...client.resources],
    first_party: client.firstParty,
  };
}

/** One client's metadata, read from the `clients` table. */
export async function loadClientMetadata(db: Knex, id: string): Promise<AdapterPayload | undefined> {
  const client = await findClientWithSecret(db, id);
  return client === undefined ? undefined : clientMetadata(client);
}

/**
 * Reads clients from the `clients` table, through the cache when there is one. Registration
 * is off, so the engine never writes through this adapter.
 */
class KnexClientAdapter implements Adapter {
  constructor(
    private readonly db: Knex,
    private readonly clients: ClientCache | undefined,
  ) {}

  find(id: string): Promise<AdapterPayload | undefined> {
    return this.clients === undefined ? loadClientMetadata(this.db, id) : this.clients.find(id);
  }

  async upsert(): Promise<void> {
    throw new Error('clients are managed with the sigil CLI');
  }

  async destroy(): Promise<void> {
    throw new Error('clients are managed with the sigil CLI');
  }

  async findByUid(): Promise<undefined> {
    return undefined;
  }

  async findByUserCode(): Promise<undefined> {
    return undefined;
  }

  async consume(): Promise<void> {}

  async revokeByGrantId(): Promise<void> {}
}

export function knexAdapterFactory(db: Knex, clients?: ClientCache): AdapterFactory {
  return (name) => (name === 'Client' ? new KnexClientAdapter(db, clients) : new KnexPayloadAdapter(db, name));
}

/**
 * Deletes expired rows, a batch at a time so a large backlog never holds a long lock.
 * @returns how many rows were removed
 */
export async function sweepExpired(db: Knex, batchSize = 1000): Promise<number> {
  let total = 0;
  for (;;) {
    // returning() rather than delete()'s count: knex-pglite returns no count for deletes
    const removed = await db(TABLE)
      .whereIn('ctid', db(TABLE).select('ctid').where('expires_at', '<', db.fn.now()).limit(batchSize))
      .delete()
      .returning('id');
    total += removed.length;
    if (removed.length < batchSize) return total;
  }
}
