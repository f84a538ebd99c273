import type { Knex } from 'knex';

import type { CountedFailure, KeyReservation, ThrottleKeys, ThrottleKind, ThrottleStore } from '../domain/login-throttle.js';
import { authEventBindings, RECORD_AUTH_EVENT } from './audit.js';
import { queryDirectNamed } from './direct.js';
import { recordableText } from './text.js';

/**
 * The rows of an attempt are always touched in this order, by every statement: pair, IP,
 * account (from the narrowest key to the widest, so that a reservation refused by its pair
 * takes no slot of the wider keys), one data-modifying CTE each, read in turn by a UNION ALL
 * (a reservation's CTE also reads the earlier ones'): two statements on the same rows then wait
 * for each other instead of deadlocking.
 */
const KINDS: readonly ThrottleKind[] = ['pair', 'ip', 'account'];

/**
 * The CTEs, then each one's rows in order, labelled with their kind. `recorded`: the attempt's
 * audit event too, inserted by a CTE of the same statement (PostgreSQL runs a data-modifying
 * CTE whether or not the query reads it), so that the counters and the event are written together.
 */
function inOrder(kinds: readonly ThrottleKind[], cte: (kind: ThrottleKind) => string, columns: string, recorded = false): string {
  const ctes = [...kinds.map((kind) => `${kind} AS (${cte(kind)})`), ...(recorded ? [`recorded AS (${RECORD_AUTH_EVENT})`] : [])].join(',\n');
  const reads = kinds.map((kind) => `SELECT '${kind}' AS kind, ${columns} FROM ${kind}`).join(' UNION ALL ');
  return `WITH ${ctes}\n${reads}`;
}

const at = (name: string) => `CAST(:${name} AS timestamptz)`;

/** In flight under the row's key: none once its last reservation is older than the expiry. */
const IN_FLIGHT = `CASE WHEN t.in_flight_at IS NULL OR t.in_flight_at < ${at('staleBefore')} THEN 0 ELSE t.in_flight END`;

/** True when every key before `kind` (KINDS' order) took its slot: their CTEs are read, so they run first. */
const earlierReserved = (kind: ThrottleKind) => {
  const earlier = KINDS.slice(0, KINDS.indexOf(kind));
  return earlier.length === 0 ? 'TRUE' : earlier.map((each) => `(SELECT e.outcome FROM ${each} e) = 'reserved'`).join(' AND ');
};

/**
 * Takes a slot unless the key is locked or full, or an earlier key refused (`skipped`: no slot;
 * a lock is still reported); the decision is written to `outcome` so RETURNING gives it back.
 */
const reserveRow = (kind: ThrottleKind) => `
  INSERT INTO login_throttle AS t (key, failures, window_started_at, updated_at, in_flight, in_flight_at, outcome)
  SELECT :${kind}Key, 0, ${at('now')}, ${at('now')}, CASE WHEN g.go THEN 1 ELSE 0 END, CASE WHEN g.go THEN ${at('now')} END, CASE WHEN g.go THEN 'reserved' ELSE 'skipped' END
  FROM (SELECT ${earlierReserved(kind)} AS go) g
  ON CONFLICT (key) DO UPDATE SET (in_flight, in_flight_at, outcome, updated_at) = (
    SELECT CASE WHEN s.decision = 'reserved' THEN s.flying + 1 ELSE s.flying END,
           CASE WHEN s.decision = 'reserved' THEN ${at('now')} ELSE t.in_flight_at END,
           s.decision, ${at('now')}
    FROM (SELECT f.flying,
                 CASE WHEN t.locked_until > ${at('now')} THEN 'locked' WHEN EXCLUDED.outcome = 'skipped' THEN 'skipped'
                      WHEN f.flying >= CAST(:${kind}Limit AS integer) THEN 'busy' ELSE 'reserved' END AS decision
          FROM (SELECT ${IN_FLIGHT} AS flying) f) s)
  RETURNING outcome, locked_until`;

/** A lock of `base` seconds doubling from the threshold, at most `max` (the exponent capped so that it stays a number). */
const lockUntil = (kind: ThrottleKind, count: string) =>
  `${at('now')} + LEAST(CAST(:${kind}Base AS float8) * power(2, LEAST(${count} - CAST(:${kind}Threshold AS integer), 30)), CAST(:${kind}Max AS float8)) * interval '1 second'`;

const release = (kind: ThrottleKind) => `GREATEST(t.in_flight - CAST(:${kind}Release AS integer), 0)`;

/** A failure under the pair or IP key (its row made if it is gone): counted in its window (which starts at its first failure), locked from the threshold. */
const countRow = (kind: ThrottleKind) => `
  INSERT INTO login_throttle AS t (key, failures, window_started_at, updated_at, outcome)
  VALUES (:${kind}Key, 1, ${at('now')}, ${at('now')}, 'counted')
  ON CONFLICT (key) DO UPDATE SET (failures, window_started_at, locked_until, in_flight, outcome, updated_at) = (
    SELECT c.n, c.started,
           CASE WHEN c.n >= CAST(:${kind}Threshold AS integer) THEN GREATEST(t.locked_until, ${lockUntil(kind, 'c.n')}) ELSE t.locked_until END,
           ${release(kind)},
           CASE WHEN c.n >= CAST(:${kind}Threshold AS integer) THEN 'locking' ELSE 'counted' END,
           ${at('now')}
    FROM (SELECT CASE WHEN w.fresh THEN 1 ELSE t.failures + 1 END AS n, CASE WHEN w.fresh THEN ${at('now')} ELSE t.window_started_at END AS started
          FROM (SELECT t.failures = 0 OR t.window_started_at < ${at('windowStart')} AS fresh) w) c)
  RETURNING failures, locked_until, outcome`;

/** A failure under the account key: its address joins the distinct addresses of the window; a new one past the threshold locks. */
const countAccountRow = () => `
  INSERT INTO login_throttle AS t (key, failures, addresses, window_started_at, updated_at, outcome)
  VALUES (:accountKey, 1, ARRAY[CAST(:address AS text)], ${at('now')}, ${at('now')}, 'counted')
  ON CONFLICT (key) DO UPDATE SET (addresses, failures, window_started_at, locked_until, in_flight, outcome, updated_at) = (
    SELECT a.addresses, cardinality(a.addresses), a.started,
           CASE WHEN a.added AND cardinality(a.addresses) >= CAST(:accountThreshold AS integer)
                THEN GREATEST(t.locked_until, ${lockUntil('account', 'cardinality(a.addresses)')}) ELSE t.locked_until END,
           ${release('account')},
           CASE WHEN a.added AND cardinality(a.addresses) >= CAST(:accountThreshold AS integer) THEN 'locking' ELSE 'counted' END,
           ${at('now')}
    FROM (SELECT CASE WHEN w.fresh THEN ARRAY[CAST(:address AS text)] WHEN w.added THEN array_append(t.addresses, CAST(:address AS text)) ELSE t.addresses END AS addresses,
                 w.fresh OR w.added AS added,
                 CASE WHEN w.fresh THEN ${at('now')} ELSE t.window_started_at END AS started
          FROM (SELECT f.fresh, NOT f.fresh AND NOT (CAST(:address AS text) = ANY (t.addresses)) AND cardinality(t.addresses) < CAST(:addressesKept AS integer) AS added
                FROM (SELECT t.failures = 0 OR t.window_started_at < ${at('windowStart')} AS fresh) f) w) a)
  RETURNING failures, locked_until, outcome`;

/** After a success: the account's rows start again (IP counters keep counting). */
const clearRow = (kind: ThrottleKind) =>
  kind === 'ip'
    ? `UPDATE login_throttle AS t SET in_flight = ${release(kind)} WHERE t.key = :${kind}Key RETURNING 1`
    : `UPDATE login_throttle AS t SET failures = 0, addresses = '{}', locked_until = NULL, window_started_at = ${at('now')},
         in_flight = ${release(kind)}, outcome = 'cleared', updated_at = ${at('now')}
       WHERE t.key = :${kind}Key RETURNING 1`;

const releaseRow = (kind: ThrottleKind) => `UPDATE login_throttle AS t SET in_flight = ${release(kind)} WHERE t.key = :${kind}Key RETURNING 1`;

const RESERVE = inOrder(KINDS, reserveRow, 'outcome, locked_until');
const countFailureOf = (kind: ThrottleKind) => (kind === 'account' ? countAccountRow() : countRow(kind));
const COUNT_FAILURE = inOrder(KINDS, countFailureOf, 'failures, outcome, locked_until');
const COUNT_FAILURE_RECORDED = inOrder(KINDS, countFailureOf, 'failures, outcome, locked_until', true);
const CLEAR_ACCOUNT = inOrder(KINDS, clearRow, '1');
const CLEAR_ACCOUNT_RECORDED = inOrder(KINDS, clearRow, '1', true);

/** Named bindings for the three keys, and how many slots each gives back. */
function keyBindings(keys: ThrottleKeys, held: readonly ThrottleKind[]): Record<string, string | number> {
  const bindings: Record<string, string | number> = {};
  for (const kind of KINDS) {
    bindings[`${kind}Key`] = recordableText(keys[kind]);
    bindings[`${kind}Release`] = held.includes(kind) ? 1 : 0;
  }
  return bindings;
}

type Row = { kind: ThrottleKind; outcome: string; locked_until: Date | null; failures?: number };

const toDate = (value: Date | null) => (value === null ? null : new Date(value));

/** Sign-in counters in the `login_throttle` table (keys are free text: see text.ts). */
export function createThrottleStore(db: Knex): ThrottleStore {
  return {
    // a named statement on the direct path (direct.ts): every sign-in runs it
    async reserve(keys, limits, now, staleBefore) {
      const bindings = { ...keyBindings(keys, []), now, staleBefore, accountLimit: limits.account, ipLimit: limits.ip, pairLimit: limits.pair };
      const rows = await queryDirectNamed<Row>(db, 'login_throttle_reserve', RESERVE, bindings);
      return rows.map((row): KeyReservation => {
        const decision = row.outcome === 'locked' || row.outcome === 'busy' || row.outcome === 'skipped' ? row.outcome : 'reserved';
        return { kind: row.kind, decision, lockedUntil: toDate(row.locked_until) };
      });
    },

    async countFailure(keys, held, { rules, windowStart, addressesKept }, now, recorded) {
      const bindings: Record<string, string | number | Date | null> = { ...keyBindings(keys, held), address: recordableText(keys.address), addressesKept, now, windowStart };
      for (const kind of KINDS) {
        bindings[`${kind}Threshold`] = rules[kind].threshold;
        bindings[`${kind}Base`] = rules[kind].baseLockSeconds;
        bindings[`${kind}Max`] = rules[kind].maxLockSeconds;
      }
      const sql = recorded === undefined ? COUNT_FAILURE : COUNT_FAILURE_RECORDED;
      const { rows } = await db.raw<{ rows: Row[] }>(sql, recorded === undefined ? bindings : { ...bindings, ...authEventBindings(recorded) });
      return rows.map((row): CountedFailure => ({ kind: row.kind, failures: Number(row.failures ?? 0), locking: row.outcome === 'locking', lockedUntil: toDate(row.locked_until) }));
    },

    // named statements on the direct path: every successful sign-in runs one
    async clearAccount(keys, held, now, recorded) {
      const bindings = { ...keyBindings(keys, held), now };
      if (recorded === undefined) await queryDirectNamed(db, 'login_throttle_clear', CLEAR_ACCOUNT, bindings);
      else await queryDirectNamed(db, 'login_throttle_clear_recorded', CLEAR_ACCOUNT_RECORDED, { ...bindings, ...authEventBindings(recorded) });
    },

    async release(keys, held, recorded) {
      const kinds = KINDS.filter((kind) => held.includes(kind));
      const event = recorded === undefined ? {} : authEventBindings(recorded);
      if (kinds.length > 0) await db.raw(inOrder(kinds, releaseRow, '1', recorded !== undefined), { ...keyBindings(keys, held), ...event });
      // a refusal that holds no slot (a locked pair: what a guessing address meets again and again) writes its event alone, as append does
      else if (recorded !== undefined) await queryDirectNamed(db, 'record_auth_event', RECORD_AUTH_EVENT, event);
    },

    // SKIP LOCKED: the sweeper never waits on a row a sign-in holds, so it cannot deadlock with one
    async countLocked(now) {
      const rows = await db('login_throttle')
        .select(db.raw("split_part(key, ':', 1) AS kind"))
        .count({ locked: '*' })
        .where('locked_until', '>', now)
        .groupByRaw("split_part(key, ':', 1)");
      const counts: Record<ThrottleKind, number> = { account: 0, ip: 0, pair: 0 };
      for (const row of rows as { kind: string; locked: string | number }[]) {
        if (row.kind === 'account' || row.kind === 'ip' || row.kind === 'pair') counts[row.kind] = Number(row.locked);
      }
      return counts;
    },

    async sweep(idleSince, now) {
      const idle = db('login_throttle')
        .select('key')
        .where('updated_at', '<', idleSince)
        .andWhere((query) => query.whereNull('locked_until').orWhere('locked_until', '<', now))
        .forUpdate()
        .skipLocked();
      await db('login_throttle').whereIn('key', idle).delete();
    },
  };
}
