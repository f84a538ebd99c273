import type { Knex } from 'knex';
import type { AdapterPayload } from 'oidc-provider';

import type { UserRecord } from '../domain/users.js';
import { prepared } from './prepared.js';
import { assertStorable, isStorableKey } from './text.js';
import { userFromJson, userJsonSql } from './users.js';

/** The one table for every model the engine stores (sessions, codes, refresh tokens, grants…). */
const TABLE = 'oidc_payloads';

/** One stored instance of an engine model, as it is in the table. */
export interface StoredPayload {
  readonly payload: AdapterPayload;
  readonly expiresAt: Date | null;
  readonly consumedAt: Date | null;
}

/** An instance to store: `expiresAt` null lives until deleted. */
export interface PayloadToStore {
  readonly type: string;
  readonly id: string;
  readonly payload: AdapterPayload;
  readonly expiresAt: Date | null;
}

/** A refresh token with what the engine reads next: its grant and its user (with roles). */
export interface RefreshTokenWithContext {
  readonly token: StoredPayload;
  /** undefined: no such grant. */
  readonly grant: StoredPayload | undefined;
  /** undefined: the token names no user, or an unknown one. */
  readonly account: UserRecord | undefined;
}

export type PayloadLookup = 'id' | 'uid' | 'user_code';

/**
 * The engine's models in `oidc_payloads`. Expired rows may still be returned: callers check
 * `expiresAt`. A key containing U+0000 finds nothing; a payload containing one is refused with
 * `UnstorableValueError` (text.ts).
 */
export interface PayloadStore {
  /** Inserts or replaces the instance (every column: nothing of a previous one survives, `consumed_at` included). */
  upsert(instance: PayloadToStore): Promise<void>;
  find(type: string, by: PayloadLookup, value: string): Promise<StoredPayload | undefined>;
  /** A refresh token, its grant and its user in one round trip. */
  findRefreshToken(id: string): Promise<RefreshTokenWithContext | undefined>;
  /**
   * Marks a single-use instance consumed, atomically.
   * @returns false when it was already consumed (or does not exist): a reuse
   */
  consume(type: string, id: string): Promise<boolean>;
  /**
   * Refresh token rotation (RFC 9700 §4.14.2): consumes `predecessorId` and stores its
   * successor in one statement, so that of two requests racing with one refresh token exactly
   * one gets a successor, and no crash can leave a consumed token without one.
   * @returns false when the predecessor was already consumed: nothing was stored
   */
  rotateRefreshToken(predecessorId: string, successor: PayloadToStore): Promise<boolean>;
  /** Deletes the grant that `type`/`id` belongs to and everything issued under it, whatever the model. */
  revokeGrantOf(type: string, id: string): Promise<void>;
  destroy(type: string, id: string): Promise<void>;
  /** Deletes the instances of one model that belong to the grant. */
  destroyByGrant(type: string, grantId: string): Promise<void>;
  /** Whether the grant exists and has not expired at `now`. */
  grantAlive(grantId: string, now: Date): Promise<boolean>;
  /** Deletes expired rows, `batchSize` at a time (no long lock on a large backlog). @returns how many */
  sweepExpired(batchSize?: number): Promise<number>;
}

interface PayloadRow {
  payload: AdapterPayload;
  expires_at: Date | null;
  consumed_at: Date | null;
}

interface RefreshTokenRow extends PayloadRow {
  grant_payload: AdapterPayload | null;
  grant_expires_at: Date | null;
  grant_consumed_at: Date | null;
  account: unknown;
}

const UPSERT_COLUMNS = '(type, id, payload, grant_id, uid, user_code, expires_at, consumed_at)';
const ON_CONFLICT_REPLACE = `ON CONFLICT (type, id) DO UPDATE SET payload = EXCLUDED.payload, grant_id = EXCLUDED.grant_id, uid = EXCLUDED.uid,
  user_code = EXCLUDED.user_code, expires_at = EXCLUDED.expires_at, consumed_at = NULL`;

const stored = (payload: AdapterPayload, expiresAt: Date | null, consumedAt: Date | null): StoredPayload => ({ payload, expiresAt, consumedAt });

function columns({ type, id, payload, expiresAt }: PayloadToStore): (string | Date | null)[] {
  return [type, id, JSON.stringify(payload), payload.grantId ?? null, payload.uid ?? null, payload.userCode ?? null, expiresAt];
}

/** The engine's models in PostgreSQL (or PGlite). The statements every token request runs are named prepared statements. */
export function createPayloadStore(db: Knex): PayloadStore {
  return new KnexPayloadStore(db);
}

class KnexPayloadStore implements PayloadStore {
  constructor(private readonly db: Knex) {}

  async upsert(instance: PayloadToStore): Promise<void> {
    assertStorable(instance);
    await this.db.raw(`INSERT INTO ${TABLE} ${UPSERT_COLUMNS} VALUES (?, ?, ?, ?, ?, ?, ?, NULL) ${ON_CONFLICT_REPLACE}`, columns(instance)).options(prepared('upsert_payload'));
  }

  async find(type: string, by: PayloadLookup, value: string): Promise<StoredPayload | undefined> {
    if (!isStorableKey(value)) return undefined;
    const { rows } = await this.db
      .raw<{ rows: PayloadRow[] }>(`SELECT payload, expires_at, consumed_at FROM ${TABLE} WHERE type = ? AND ${by} = ? LIMIT 1`, [type, value] as const)
      .options(prepared(`payload_by_${by}`));
    const row = rows[0];
    return row === undefined ? undefined : stored(row.payload, row.expires_at, row.consumed_at);
  }

  async findRefreshToken(id: string): Promise<RefreshTokenWithContext | undefined> {
    if (!isStorableKey(id)) return undefined;
    const { rows } = await this.db
      .raw<{ rows: RefreshTokenRow[] }>(
        `SELECT t.payload, t.expires_at, t.consumed_at,
           g.payload AS grant_payload, g.expires_at AS grant_expires_at, g.consumed_at AS grant_consumed_at,
           ${userJsonSql("t.payload->>'accountId'")} AS account
         FROM ${TABLE} t
         LEFT JOIN ${TABLE} g ON g.type = 'Grant' AND g.id = t.grant_id
         WHERE t.type = 'RefreshToken' AND t.id = ?
         LIMIT 1`,
        [id],
      )
      .options(prepared('find_refresh_token'));
    const row = rows[0];
    if (row === undefined) return undefined;
    return {
      token: stored(row.payload, row.expires_at, row.consumed_at),
      grant: row.grant_payload === null ? undefined : stored(row.grant_payload, row.grant_expires_at, row.grant_consumed_at),
      account: userFromJson(row.account),
    };
  }

  async consume(type: string, id: string): Promise<boolean> {
    if (!isStorableKey(id)) return false;
    const consumed = await this.db
      .raw<{ rows: unknown[] }>(`UPDATE ${TABLE} SET consumed_at = CURRENT_TIMESTAMP WHERE type = ? AND id = ? AND consumed_at IS NULL RETURNING id`, [type, id])
      .options(prepared('consume_payload'));
    return consumed.rows.length > 0;
  }

  async rotateRefreshToken(predecessorId: string, successor: PayloadToStore): Promise<boolean> {
    assertStorable(successor);
    if (!isStorableKey(predecessorId)) return false;
    const inserted = await this.db
      .raw<{ rows: unknown[] }>(
        `WITH consumed AS (
           UPDATE ${TABLE} SET consumed_at = CURRENT_TIMESTAMP WHERE type = 'RefreshToken' AND id = ? AND consumed_at IS NULL RETURNING id
         )
         INSERT INTO ${TABLE} ${UPSERT_COLUMNS}
         SELECT ?, ?, ?::jsonb, ?, ?, ?, ?::timestamptz, NULL WHERE EXISTS (SELECT 1 FROM consumed)
         ${ON_CONFLICT_REPLACE}
         RETURNING id`,
        [predecessorId, ...columns(successor)],
      )
      .options(prepared('rotate_refresh_token'));
    return inserted.rows.length > 0;
  }

  async revokeGrantOf(type: string, id: string): Promise<void> {
    if (!isStorableKey(id)) return;
    const row = await this.db(TABLE).select<{ grant_id: string | null }[]>('grant_id').where({ type, id }).first();
    if (row?.grant_id) await this.revokeGrant(row.grant_id);
  }

  async destroy(type: string, id: string): Promise<void> {
    if (!isStorableKey(id)) return;
    await this.db(TABLE).where({ type, id }).delete();
  }

  async destroyByGrant(type: string, grantId: string): Promise<void> {
    if (!isStorableKey(grantId)) return;
    await this.db(TABLE).where({ type, grant_id: grantId }).delete();
  }

  async grantAlive(grantId: string, now: Date): Promise<boolean> {
    if (!isStorableKey(grantId)) return false;
    const row = await this.db(TABLE)
      .where({ type: 'Grant', id: grantId })
      .andWhere((query) => query.whereNull('expires_at').orWhere('expires_at', '>', now))
      .first('id');
    return row !== undefined;
  }

  async sweepExpired(batchSize = 1000): Promise<number> {
    let total = 0;
    for (;;) {
      // returning() rather than delete()'s count: knex-pglite returns no count for deletes
      const removed = await this.db(TABLE)
        .whereIn('ctid', this.db(TABLE).select('ctid').where('expires_at', '<', this.db.fn.now()).limit(batchSize))
        .delete()
        .returning('id');
      total += removed.length;
      if (removed.length < batchSize) return total;
    }
  }

  private async revokeGrant(grantId: string): Promise<void> {
    await this.db(TABLE)
      .where({ grant_id: grantId })
      .orWhere((query) => query.where({ type: 'Grant', id: grantId }))
      .delete();
  }
}
