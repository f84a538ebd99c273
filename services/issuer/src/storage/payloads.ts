import type { Knex } from 'knex';
import type { AdapterPayload } from 'oidc-provider';

import type { UserRecord } from '../domain/users.js';
import { queryDirect } from './direct.js';
import { ENDED_GRANT_COLUMNS, recordEndedGrantsSql } from './revocations.js';
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
  /** Spent by a rotation less than the retry window ago: presenting it again may be a retry (see `unusedSuccessor`). */
  readonly retryable: boolean;
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
  /** A refresh token, its grant and its user in one round trip; `retryWindow` in seconds. */
  findRefreshToken(id: string, retryWindow: number): Promise<RefreshTokenWithContext | undefined>;
  /**
   * Stores a new refresh token (not a rotation's successor) if its grant still exists: a
   * revocation of that grant, even one running at the same moment, deletes it too.
   * @returns false when the grant is gone (revoked): nothing was stored
   */
  insertRefreshToken(token: PayloadToStore): Promise<boolean>;
  /**
   * Marks a single-use instance consumed, atomically.
   * @returns false when it was already consumed (or does not exist): a reuse
   */
  consume(type: string, id: string): Promise<boolean>;
  /**
   * Refresh token rotation (RFC 9700 §4.14.2): consumes `predecessorId`, remembers its
   * successor on it, and stores the successor, in one statement, so that of two requests racing
   * with one refresh token exactly one gets a successor, and no crash can leave a consumed token
   * without one. Like `insertRefreshToken`, only while the grant exists.
   * @returns false when the predecessor was already consumed (or its grant is gone): nothing was stored
   */
  rotateRefreshToken(predecessorId: string, successor: PayloadToStore): Promise<boolean>;
  /**
   * The successor of refresh token `predecessorId` when a retry may have it: the predecessor was
   * rotated less than `retryWindow` seconds ago (database time, the same for every replica) and
   * the successor has never been used. One statement: a successor consumed before it is seen as
   * used, one consumed after it was handed out as a retry that came first.
   */
  unusedSuccessor(predecessorId: string, retryWindow: number): Promise<string | undefined>;
  /** Deletes the grant that `type`/`id` belongs to and everything issued under it, whatever the model. */
  revokeGrantOf(type: string, id: string): Promise<void>;
  /**
   * Deletes the grant and everything issued under it, refresh tokens being stored at that moment
   * included, and records the grant ended (storage/revocations.ts) with the grant's deletion.
   */
  revokeGrant(grantId: string): Promise<void>;
  /** Deletes one instance; a grant is recorded ended with its deletion (see `revokeGrant`). */
  destroy(type: string, id: string): Promise<void>;
  /** Deletes the instances of one model that belong to the grant. */
  destroyByGrant(type: string, grantId: string): Promise<void>;
  /** Whether the grant exists and has not expired at `now`. */
  grantAlive(grantId: string, now: Date): Promise<boolean>;
  /**
   * Records that an access token of the grant is being exchanged for `audience` (RFC 8693), so
   * that the grant's revocation names it too and that audience's services hear of it. Race-free
   * against the grant's deletion: either it is recorded in the row the deletion returns, or the
   * grant is already gone and this answers false.
   * @returns false when the grant is gone or expired: nothing may be issued under it
   */
  recordExchangeAudience(grantId: string, audience: string): Promise<boolean>;
  /**
   * Deletes expired rows, and reduces refresh tokens spent more than `retryWindow` seconds ago
   * to what reuse detection reads (docs/storage.md#spent-refresh-tokens), `batchSize` rows at a
   * time (no long lock on a large backlog).
   * @returns how many rows were deleted or reduced
   */
  sweepExpired(options?: SweepOptions): Promise<number>;
}

export interface SweepOptions {
  /** Seconds a spent refresh token stays whole for a retry (REFRESH_TOKEN_RETRY_WINDOW); default 0. */
  readonly retryWindow?: number;
  readonly batchSize?: number;
}

/**
 * What a spent refresh token keeps after its retry window: every field the engine's refresh
 * grant checks before it finds the token spent and revokes the grant (binding to client,
 * grant, account, session and key; scope; lifetime). What it carried to issue tokens (claims,
 * authentication context, nonce, resource, authorization details) is dropped.
 */
const SPENT_REFRESH_TOKEN_KEEPS = [
  'jti', 'kind', 'iat', 'exp', 'iiat', 'clientId', 'grantId', 'accountId', 'scope',
  'sessionUid', 'expiresWithSession', 'jkt', 'x5t#S256', 'attestationJkt',
] as const;
const KEPT_KEYS_SQL = `ARRAY[${SPENT_REFRESH_TOKEN_KEEPS.map((key) => `'${key}'`).join(', ')}]::text[]`;

interface PayloadRow {
  payload: AdapterPayload;
  expires_at: Date | null;
  consumed_at: Date | null;
}

interface RefreshTokenRow extends PayloadRow {
  retryable: boolean;
  grant_payload: AdapterPayload | null;
  grant_expires_at: Date | null;
  grant_consumed_at: Date | null;
  account: unknown;
}

const UPSERT_COLUMNS = '(type, id, payload, grant_id, uid, user_code, expires_at, consumed_at)';
const ON_CONFLICT_REPLACE = `ON CONFLICT (type, id) DO UPDATE SET payload = EXCLUDED.payload, grant_id = EXCLUDED.grant_id, uid = EXCLUDED.uid,
  user_code = EXCLUDED.user_code, expires_at = EXCLUDED.expires_at, consumed_at = NULL, successor_id = NULL`;
/**
 * The grant a refresh token is stored under, locked against deletion until the statement
 * commits (`revokeGrant` deletes the grant row first, so it waits for the insert and then sees
 * it). Parameters: the grant id, twice; a token naming no grant needs none.
 */
const LIVE_GRANT = `live_grant AS (SELECT 1 FROM ${TABLE} WHERE type = 'Grant' AND id = ? FOR KEY SHARE)`;
const GRANT_LIVES = '(EXISTS (SELECT 1 FROM live_grant) OR ?::text IS NULL)';
/** `?` seconds before now, in the database's clock. */
const SECONDS_AGO = `CURRENT_TIMESTAMP - (?::integer * interval '1 second')`;

const stored = (payload: AdapterPayload, expiresAt: Date | null, consumedAt: Date | null): StoredPayload => ({ payload, expiresAt, consumedAt });

function grantOf({ payload }: PayloadToStore): string | null {
  return typeof payload.grantId === 'string' ? payload.grantId : null;
}

function columns({ type, id, payload, expiresAt }: PayloadToStore): (string | Date | null)[] {
  return [type, id, JSON.stringify(payload), payload.grantId ?? null, payload.uid ?? null, payload.userCode ?? null, expiresAt];
}

/** The engine's models in PostgreSQL (or PGlite). The statements every token request runs are named prepared statements, on the direct path (direct.ts). */
export function createPayloadStore(db: Knex): PayloadStore {
  return new KnexPayloadStore(db);
}

class KnexPayloadStore implements PayloadStore {
  constructor(private readonly db: Knex) {}

  async upsert(instance: PayloadToStore): Promise<void> {
    assertStorable(instance);
    await queryDirect(this.db, 'upsert_payload', `INSERT INTO ${TABLE} ${UPSERT_COLUMNS} VALUES (?, ?, ?, ?, ?, ?, ?, NULL) ${ON_CONFLICT_REPLACE}`, columns(instance));
  }

  async find(type: string, by: PayloadLookup, value: string): Promise<StoredPayload | undefined> {
    if (!isStorableKey(value)) return undefined;
    const rows = await queryDirect<PayloadRow>(this.db, `payload_by_${by}`, `SELECT payload, expires_at, consumed_at FROM ${TABLE} WHERE type = ? AND ${by} = ? LIMIT 1`, [type, value]);
    const row = rows[0];
    return row === undefined ? undefined : stored(row.payload, row.expires_at, row.consumed_at);
  }

  async findRefreshToken(id: string, retryWindow: number): Promise<RefreshTokenWithContext | undefined> {
    if (!isStorableKey(id)) return undefined;
    const rows = await queryDirect<RefreshTokenRow>(
      this.db,
      'find_refresh_token',
      `SELECT t.payload, t.expires_at, t.consumed_at,
           (t.successor_id IS NOT NULL AND t.consumed_at > ${SECONDS_AGO}) AS retryable,
           g.payload AS grant_payload, g.expires_at AS grant_expires_at, g.consumed_at AS grant_consumed_at,
           ${userJsonSql("t.payload->>'accountId'")} AS account
         FROM ${TABLE} t
         LEFT JOIN ${TABLE} g ON g.type = 'Grant' AND g.id = t.grant_id
         WHERE t.type = 'RefreshToken' AND t.id = ?
         LIMIT 1`,
      [Math.floor(retryWindow), id],
    );
    const row = rows[0];
    if (row === undefined) return undefined;
    return {
      token: stored(row.payload, row.expires_at, row.consumed_at),
      retryable: row.retryable,
      grant: row.grant_payload === null ? undefined : stored(row.grant_payload, row.grant_expires_at, row.grant_consumed_at),
      account: userFromJson(row.account),
    };
  }

  async consume(type: string, id: string): Promise<boolean> {
    if (!isStorableKey(id)) return false;
    const consumed = await queryDirect(this.db, 'consume_payload', `UPDATE ${TABLE} SET consumed_at = CURRENT_TIMESTAMP WHERE type = ? AND id = ? AND consumed_at IS NULL RETURNING id`, [type, id]);
    return consumed.length > 0;
  }

  async insertRefreshToken(token: PayloadToStore): Promise<boolean> {
    assertStorable(token);
    const inserted = await queryDirect(
      this.db,
      'insert_refresh_token',
      `WITH ${LIVE_GRANT}
         INSERT INTO ${TABLE} ${UPSERT_COLUMNS}
         SELECT ?, ?, ?::jsonb, ?, ?, ?, ?::timestamptz, NULL WHERE ${GRANT_LIVES}
         ${ON_CONFLICT_REPLACE}
         RETURNING id`,
      [grantOf(token), ...columns(token), grantOf(token)],
    );
    return inserted.length > 0;
  }

  async rotateRefreshToken(predecessorId: string, successor: PayloadToStore): Promise<boolean> {
    assertStorable(successor);
    if (!isStorableKey(predecessorId)) return false;
    const inserted = await queryDirect(
      this.db,
      'rotate_refresh_token',
      `WITH ${LIVE_GRANT}, consumed AS (
           UPDATE ${TABLE} SET consumed_at = CURRENT_TIMESTAMP, successor_id = ?
           WHERE type = 'RefreshToken' AND id = ? AND consumed_at IS NULL AND ${GRANT_LIVES}
           RETURNING id
         )
         INSERT INTO ${TABLE} ${UPSERT_COLUMNS}
         SELECT ?, ?, ?::jsonb, ?, ?, ?, ?::timestamptz, NULL WHERE EXISTS (SELECT 1 FROM consumed)
         ${ON_CONFLICT_REPLACE}
         RETURNING id`,
      [grantOf(successor), successor.id, predecessorId, grantOf(successor), ...columns(successor)],
    );
    return inserted.length > 0;
  }

  async unusedSuccessor(predecessorId: string, retryWindow: number): Promise<string | undefined> {
    if (!isStorableKey(predecessorId) || retryWindow <= 0) return undefined;
    const rows = await queryDirect<{ id: string }>(
      this.db,
      'unused_successor',
      `SELECT s.id FROM ${TABLE} p
         JOIN ${TABLE} s ON s.type = 'RefreshToken' AND s.id = p.successor_id
         WHERE p.type = 'RefreshToken' AND p.id = ? AND p.consumed_at > ${SECONDS_AGO} AND s.consumed_at IS NULL`,
      [predecessorId, Math.floor(retryWindow)],
    );
    return rows[0]?.id;
  }

  async revokeGrantOf(type: string, id: string): Promise<void> {
    if (!isStorableKey(id)) return;
    const row = await this.db(TABLE).select<{ grant_id: string | null }[]>('grant_id').where({ type, id }).first();
    if (row?.grant_id) await this.revokeGrant(row.grant_id);
  }

  async destroy(type: string, id: string): Promise<void> {
    if (!isStorableKey(id)) return;
    // the engine destroys a grant only to revoke it (RFC 7009 revocation of its refresh token, logout)
    if (type === 'Grant') await this.endGrant(id);
    else await this.db(TABLE).where({ type, id }).delete();
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

  async recordExchangeAudience(grantId: string, audience: string): Promise<boolean> {
    if (!isStorableKey(grantId) || !isStorableKey(audience)) return false;
    // the common case reads only: the audience was recorded by an earlier exchange, and a
    // deletion's RETURNING, even one running now, holds every value committed before it
    const recorded = async () => {
      const rows = await queryDirect<{ has: boolean }>(
        this.db,
        'grant_exchange_audience',
        `SELECT COALESCE(exchange_audiences, '[]'::jsonb) @> jsonb_build_array(?::text) AS has FROM ${TABLE}
           WHERE type = 'Grant' AND id = ? AND (expires_at IS NULL OR expires_at > CURRENT_TIMESTAMP)`,
        [audience, grantId],
      );
      return rows[0]?.has;
    };
    const before = await recorded();
    if (before !== false) return before === true;
    // an update waits for a deletion in progress and then finds no row; one it precedes is seen
    // by that deletion (READ COMMITTED re-reads the updated row, and RETURNING gives it)
    const { rows } = await this.db.raw<{ rows: unknown[] }>(
      `UPDATE ${TABLE} SET exchange_audiences = COALESCE(exchange_audiences, '[]'::jsonb) || jsonb_build_array(?::text)
       WHERE type = 'Grant' AND id = ? AND (expires_at IS NULL OR expires_at > CURRENT_TIMESTAMP)
         AND NOT COALESCE(exchange_audiences, '[]'::jsonb) @> jsonb_build_array(?::text)
       RETURNING 1`,
      [audience, grantId, audience],
    );
    // no row: the grant went, or a concurrent exchange recorded the same audience first
    return rows.length > 0 || (await recorded()) === true;
  }

  async sweepExpired({ retryWindow = 0, batchSize = 1000 }: SweepOptions = {}): Promise<number> {
    return (await this.inBatches(batchSize, () => this.deleteExpired(batchSize))) + (await this.inBatches(batchSize, () => this.reduceSpent(retryWindow, batchSize)));
  }

  async revokeGrant(grantId: string): Promise<void> {
    if (!isStorableKey(grantId)) return;
    // the grant row first, in its own statement: it waits for a refresh token being stored under
    // it (which holds it, see LIVE_GRANT), and once it is gone no such insert succeeds; the next
    // statement's fresh snapshot then sees every token stored before
    await this.endGrant(grantId);
    await this.db(TABLE).where({ grant_id: grantId }).delete();
  }

  /** Deletes the grant row and records the grant ended, in one statement (so every access token it issued reads revoked). */
  private async endGrant(grantId: string): Promise<void> {
    await this.db.raw(
      `WITH ended AS (DELETE FROM ${TABLE} WHERE type = 'Grant' AND id = ? RETURNING ${ENDED_GRANT_COLUMNS}), ${recordEndedGrantsSql('ended')} SELECT 1`,
      [grantId],
    );
  }

  private async inBatches(batchSize: number, batch: () => Promise<number>): Promise<number> {
    let total = 0;
    for (;;) {
      const done = await batch();
      total += done;
      if (done < batchSize) return total;
    }
  }

  private async deleteExpired(batchSize: number): Promise<number> {
    // returning() rather than delete()'s count: knex-pglite returns no count for deletes
    const removed = await this.db(TABLE)
      .whereIn('ctid', this.db(TABLE).select('ctid').where('expires_at', '<', this.db.fn.now()).limit(batchSize))
      .delete()
      .returning('id');
    return removed.length;
  }

  /** Spent refresh tokens past the retry window keep only what reuse detection reads, and no successor. */
  private async reduceSpent(retryWindow: number, batchSize: number): Promise<number> {
    const { rows } = await this.db.raw<{ rows: unknown[] }>(
      `UPDATE ${TABLE} t
       SET payload = COALESCE((SELECT jsonb_object_agg(key, value) FROM jsonb_each(t.payload) WHERE key = ANY(${KEPT_KEYS_SQL})), '{}'::jsonb),
         successor_id = NULL
       WHERE t.ctid IN (
         SELECT ctid FROM ${TABLE}
         WHERE type = 'RefreshToken' AND consumed_at < ${SECONDS_AGO}
           AND (successor_id IS NOT NULL OR EXISTS (SELECT 1 FROM jsonb_object_keys(payload) k WHERE k <> ALL(${KEPT_KEYS_SQL})))
         LIMIT ?
       )
       RETURNING t.id`,
      [Math.floor(retryWindow), batchSize],
    );
    return rows.length;
  }
}
