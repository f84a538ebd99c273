import type { Knex } from 'knex';

import type { FeedCursor, FeedPage, Revocation, RevocationKind, RevocationStore, RevokedEntry } from '../domain/revocations.js';
import { ACCESS_TOKEN_TTL_BOUND, CLIENT_REVOCATION_MARGIN } from '../domain/revocations.js';
import { queryDirect } from './direct.js';
import { isStorableKey } from './text.js';

/**
 * Revoked JWT access tokens (`jti`), ended grants (`grant`) and revoked clients (`client`, with
 * `revoked_at` the moment up to which their tokens are revoked), each until its tokens have expired.
 */
const TABLE = 'revocations';

interface FeedRow {
  /** `id` and `xid` as text (64-bit). */
  id_text: string;
  xid_text: string;
  kind: RevocationKind;
  value: string;
  revoked_at: Date;
  expires_at: Date;
}

function toEntry(row: FeedRow): RevokedEntry {
  const expiresAt = new Date(row.expires_at);
  return row.kind === 'client'
    ? { kind: row.kind, value: row.value, revokedAt: new Date(row.revoked_at), expiresAt }
    : { kind: row.kind, value: row.value, expiresAt };
}

/** What a statement that deletes grants returns of each, for {@link recordEndedGrantsSql}. */
export const ENDED_GRANT_COLUMNS = 'id, payload, exchange_audiences';

/**
 * SQL of a data-modifying CTE named `recorded` that records every grant in the CTE `ended`
 * (rows of `oidc_payloads` with {@link ENDED_GRANT_COLUMNS}) as ended: its access tokens may
 * live until the longest access token lifetime from now, and were minted for the resources of
 * the grant and those its tokens were exchanged for (RFC 8693, `exchange_audiences`; none
 * known: every resource service is told). For the statement that deletes the grants, so that
 * no grant ends unrecorded.
 */
export function recordEndedGrantsSql(ended: string): string {
  return `recorded AS (
    INSERT INTO ${TABLE} (kind, value, audiences, expires_at)
    SELECT 'grant', e.id,
      NULLIF(ARRAY(
        SELECT jsonb_object_keys(CASE WHEN jsonb_typeof(e.payload->'resources') = 'object' THEN e.payload->'resources' ELSE '{}'::jsonb END)
        UNION SELECT jsonb_array_elements_text(CASE WHEN jsonb_typeof(e.exchange_audiences) = 'array' THEN e.exchange_audiences ELSE '[]'::jsonb END)
      ), '{}'::text[]),
      CURRENT_TIMESTAMP + interval '${ACCESS_TOKEN_TTL_BOUND} seconds'
    FROM ${ended} e
  )`;
}

/**
 * Records, in the transaction that disables or deletes client `clientId`, that every access
 * token issued to it is revoked up to a moment just after this statement
 * ({@link CLIENT_REVOCATION_MARGIN}): client credentials tokens have no grant that could end
 * with them. `revoked_at` is that moment (the database's clock, as every other time here); the
 * entry lasts the longest access token lifetime after it, and names no audience, so every
 * resource service is told: the client's tokens may be for resources it was registered for
 * earlier (a change in the same update, or one made within a token's lifetime), which its
 * registration no longer names. A token issued in the same
 * second as the moment but after it is refused too (`iat` is whole seconds): that fails closed.
 * A later disabling records a later moment; enabling records nothing, so what was issued before
 * stays refused and what is issued after works.
 */
export async function recordRevokedClient(trx: Knex.Transaction, clientId: string): Promise<void> {
  await trx.raw(
    `INSERT INTO ${TABLE} (kind, value, audiences, revoked_at, expires_at)
     SELECT 'client', ?::text, NULL, moment, moment + interval '${ACCESS_TOKEN_TTL_BOUND} seconds'
     FROM (SELECT clock_timestamp() + interval '${CLIENT_REVOCATION_MARGIN} seconds' AS moment) AS revocation`,
    [clientId],
  );
}

/** Revocations in PostgreSQL (or PGlite). */
export function createRevocationStore(db: Knex): RevocationStore {
  return {
    async record({ kind, value, audiences, expiresAt }: Revocation) {
      if (!isStorableKey(value) || !audiences.every(isStorableKey)) return;
      await db(TABLE).insert({ kind, value, audiences: audiences.length === 0 ? null : audiences, expires_at: expiresAt });
    },

    // a named statement: every introspection of a JWT access token runs it (one round trip for
    // all three kinds; an iat that is no whole number compares as issued before any revocation)
    async isRevoked({ jti, grantId, clientId, issuedAt }) {
      const keys = [jti, grantId, clientId].map((key) => (key !== undefined && isStorableKey(key) ? key : null));
      const rows = await queryDirect(
        db,
        'token_revoked',
        `SELECT 1 FROM ${TABLE}
           WHERE ((kind = 'jti' AND value = ?::text) OR (kind = 'grant' AND value = ?::text)
               OR (kind = 'client' AND value = ?::text AND revoked_at >= COALESCE(to_timestamp(?::double precision), '-infinity'::timestamptz)))
             AND expires_at > CURRENT_TIMESTAMP
           LIMIT 1`,
        [...keys, issuedAt !== undefined && Number.isSafeInteger(issuedAt) ? issuedAt : null],
      );
      return rows.length > 0;
    },

    /**
     * Entries in the order of (writing transaction, id), after `after`, and only those whose
     * transaction (and every earlier one) has finished: a transaction still running holds back
     * every later entry, so an entry that commits late is never behind a cursor already handed out.
     */
    async page(audiences, after, limit): Promise<FeedPage> {
      const { rows } = await db.raw<{ rows: FeedRow[] }>(
        `SELECT id::text AS id_text, xid::text AS xid_text, kind, value, revoked_at, expires_at FROM ${TABLE}
         WHERE (xid, id) > (?::text::xid8, ?::bigint)
           AND xid < pg_snapshot_xmin(pg_current_snapshot())
           AND expires_at > CURRENT_TIMESTAMP
           AND (audiences IS NULL OR audiences && ?::text[])
         ORDER BY xid, id
         LIMIT ?`,
        [after.xid, after.id, audiences.filter(isStorableKey), limit],
      );
      const last = rows.at(-1);
      const entries: RevokedEntry[] = rows.map(toEntry);
      const next: FeedCursor = last === undefined ? after : { xid: last.xid_text, id: last.id_text };
      return { entries, next, more: rows.length === limit };
    },

    async sweepExpired() {
      // returning() rather than delete()'s count: knex-pglite returns no count for deletes
      const removed = await db(TABLE).where('expires_at', '<', db.fn.now()).delete().returning('id');
      return removed.length;
    },
  };
}
