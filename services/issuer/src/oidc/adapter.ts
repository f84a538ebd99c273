import type { Knex } from 'knex';
import { errors, type Adapter, type AdapterFactory, type AdapterPayload } from 'oidc-provider';

import { findClientWithSecret, type ClientWithSecret } from '../domain/clients.js';
import { userFromJson, userJsonSql } from '../domain/users.js';
import { isLoopbackHost } from '../domain/validation.js';
import { prepared } from '../storage/prepared.js';
import type { ClientCache } from './client-cache.js';
import { currentReads, existingReads, type RequestReads } from './request-reads.js';
import { OIDC_SCOPES } from './resource-servers.js';

interface PayloadRow {
  payload: AdapterPayload;
  expires_at: Date | null;
  consumed_at: Date | null;
}

/** A refresh token with its grant and its user, read in one round trip (`findRefreshToken`). */
interface RefreshTokenRow extends PayloadRow {
  grant_payload: AdapterPayload | null;
  grant_expires_at: Date | null;
  grant_consumed_at: Date | null;
  account: unknown;
}

const TABLE = 'oidc_payloads';

function epochSeconds(date: Date): number {
  return Math.floor(date.getTime() / 1000);
}

/** A stored instance as the engine expects it: absent once expired, `consumed` set once consumed. */
function payloadOf(payload: AdapterPayload | null, expiresAt: Date | null, consumedAt: Date | null): AdapterPayload | undefined {
  if (payload === null) return undefined;
  if (expiresAt !== null && new Date(expiresAt).getTime() <= Date.now()) return undefined;
  return consumedAt === null ? payload : { ...payload, consumed: epochSeconds(new Date(consumedAt)) };
}

const UPSERT_COLUMNS = '(type, id, payload, grant_id, uid, user_code, expires_at, consumed_at)';
const ON_CONFLICT_REPLACE = `ON CONFLICT (type, id) DO UPDATE SET payload = EXCLUDED.payload, grant_id = EXCLUDED.grant_id, uid = EXCLUDED.uid,
  user_code = EXCLUDED.user_code, expires_at = EXCLUDED.expires_at, consumed_at = NULL`;

/**
 * Stores one oidc-provider model (Session, Interaction, AuthorizationCode, RefreshToken,
 * Grant, …) in `oidc_payloads`. The engine's storage contract, method by method, is in
 * oidc-provider's `example/my_adapter.js`; rows past `expires_at` are treated as absent
 * and removed by the sweeper.
 */
export class KnexPayloadAdapter implements Adapter {
  /**
   * @param readsOfRequest the reads of the engine request in progress (see request-reads.ts);
   *   `undefined` outside a request makes every call stand alone
   */
  constructor(
    private readonly db: Knex,
    private readonly type: string,
    private readonly readsOfRequest: () => RequestReads | undefined = currentReads,
  ) {}

  /**
   * Inserts or replaces the instance (every column, so nothing of a previous one survives);
   * `expiresIn` is in seconds. The successor of a refresh token whose consumption was put off
   * (see `consume`) is inserted only if that consumption succeeds, in the same statement.
   */
  async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
    const values = [
      this.type,
      id,
      JSON.stringify(payload),
      payload.grantId ?? null,
      payload.uid ?? null,
      payload.userCode ?? null,
      expiresIn === undefined ? null : new Date(Date.now() + expiresIn * 1000),
    ];
    const reads = this.type === 'RefreshToken' ? this.readsOfRequest() : undefined;
    const predecessor = reads?.pendingConsume;
    if (reads === undefined || predecessor === undefined) {
      await this.db.raw(`INSERT INTO ${TABLE} ${UPSERT_COLUMNS} VALUES (?, ?, ?, ?, ?, ?, ?, NULL) ${ON_CONFLICT_REPLACE}`, values).options(prepared('upsert_payload'));
      return;
    }
    reads.pendingConsume = undefined;
    const inserted = await this.db.raw<{ rows: unknown[] }>(
      `WITH consumed AS (
         UPDATE ${TABLE} SET consumed_at = CURRENT_TIMESTAMP WHERE type = 'RefreshToken' AND id = ? AND consumed_at IS NULL RETURNING id
       )
       INSERT INTO ${TABLE} ${UPSERT_COLUMNS}
       SELECT ?, ?, ?::jsonb, ?, ?, ?, ?::timestamptz, NULL WHERE EXISTS (SELECT 1 FROM consumed)
       ${ON_CONFLICT_REPLACE}
       RETURNING id`,
      [predecessor, ...values],
    ).options(prepared('rotate_refresh_token'));
    if (inserted.rows.length === 0) await this.refuseReuse(predecessor);
  }

  find(id: string): Promise<AdapterPayload | undefined> {
    if (this.type === 'RefreshToken') return this.findRefreshToken(id);
    if (this.type === 'Grant') {
      // read a moment ago with the refresh token that names it, in this same request
      const grants = this.readsOfRequest()?.grants;
      if (grants?.has(id) === true) {
        const grant = grants.get(id);
        grants.delete(id);
        return Promise.resolve(grant);
      }
    }
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
   *
   * A refresh token consumed inside an engine request is rotated: the engine consumes it and
   * then saves its successor, so the consumption is put off to that insert and both happen in
   * one statement (`upsert`). `flushPendingConsume` consumes it anyway if the request ends
   * without a successor.
   */
  async consume(id: string): Promise<void> {
    const reads = this.type === 'RefreshToken' ? this.readsOfRequest() : undefined;
    if (reads !== undefined && reads.pendingConsume === undefined) {
      reads.pendingConsume = id;
      return;
    }
    await this.consumeNow(id);
  }

  /** The consumption itself (see `consume`). */
  async consumeNow(id: string): Promise<void> {
    const consumed = await this.db.raw<{ rows: unknown[] }>(
      `UPDATE ${TABLE} SET consumed_at = CURRENT_TIMESTAMP WHERE type = ? AND id = ? AND consumed_at IS NULL RETURNING id`,
      [this.type, id],
    ).options(prepared('consume_payload'));
    if (consumed.rows.length === 0) await this.refuseReuse(id);
  }

  /** A second use of a single-use instance: revokes its grant and refuses the request. */
  private async refuseReuse(id: string): Promise<never> {
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
    ).options(prepared(`payload_by_${column}`));
    const row = rows[0];
    return row === undefined ? undefined : payloadOf(row.payload, row.expires_at, row.consumed_at);
  }

  /**
   * A refresh token, with (inside an engine request) its grant and its user in the same round
   * trip: the engine asks for both next, and gets them from the request's reads.
   */
  private async findRefreshToken(id: string): Promise<AdapterPayload | undefined> {
    const reads = this.readsOfRequest();
    if (reads === undefined) return this.findBy('id', id);
    const { rows } = await this.db.raw<{ rows: RefreshTokenRow[] }>(
      `SELECT t.payload, t.expires_at, t.consumed_at,
         g.payload AS grant_payload, g.expires_at AS grant_expires_at, g.consumed_at AS grant_consumed_at,
         ${userJsonSql("t.payload->>'accountId'")} AS account
       FROM ${TABLE} t
       LEFT JOIN ${TABLE} g ON g.type = 'Grant' AND g.id = t.grant_id
       WHERE t.type = 'RefreshToken' AND t.id = ?
       LIMIT 1`,
      [id],
    ).options(prepared('find_refresh_token'));
    const row = rows[0];
    if (row === undefined) return undefined;
    const token = payloadOf(row.payload, row.expires_at, row.consumed_at);
    const { grantId, accountId } = row.payload;
    if (typeof grantId === 'string') reads.grants.set(grantId, payloadOf(row.grant_payload, row.grant_expires_at, row.grant_consumed_at));
    if (typeof accountId === 'string' && !reads.users.has(accountId)) reads.users.set(accountId, Promise.resolve(userFromJson(row.account)));
    return token;
  }
}

/**
 * Consumes a refresh token whose consumption was put off (see `KnexPayloadAdapter.consume`)
 * when the request ended without saving its successor. Run after every engine request.
 */
export async function flushPendingConsume(db: Knex, ctx: object): Promise<void> {
  const reads = existingReads(ctx);
  const pending = reads?.pendingConsume;
  if (reads === undefined || pending === undefined) return;
  reads.pendingConsume = undefined;
  await new KnexPayloadAdapter(db, 'RefreshToken').consumeNow(pending);
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
