import type { Knex } from 'knex';
import { z } from 'zod';

import { UserConflictError, type LoginCandidate, type UserRecord, type UserStore, type UserToInsert } from '../domain/users.js';
import { queryDirect } from './direct.js';
import { ENDED_GRANT_COLUMNS, recordEndedGrantsSql } from './revocations.js';
import { listByCreation, lockRow, pageByCreation } from './rows.js';
import { isStorableKey } from './text.js';

/** The `users` table, with `user_roles` (and `roles`, the names in use). */
interface UserRow {
  id: string;
  username: string;
  email: string | null;
  password_hash: string;
  disabled: boolean;
  created_at: Date;
  updated_at: Date;
}

/** SQL: the roles (sorted, `{}` for none) of the user row aliased `u`. */
const ROLES_OF_U = `coalesce((SELECT array_agg(r.role ORDER BY r.role) FROM user_roles r WHERE r.user_id = u.id), '{}')`;

function toRecord(row: Omit<UserRow, 'password_hash'>, roles: readonly string[]): UserRecord {
  return { id: row.id, username: row.username, email: row.email, roles, disabled: row.disabled, createdAt: new Date(row.created_at), updatedAt: new Date(row.updated_at) };
}

async function rolesOf(db: Knex, userIds: string[]): Promise<Map<string, string[]>> {
  const rows = userIds.length === 0 ? [] : await db('user_roles').whereIn('user_id', userIds).orderBy('role').select<{ user_id: string; role: string }[]>('user_id', 'role');
  const roles = new Map<string, string[]>();
  for (const row of rows) roles.set(row.user_id, [...(roles.get(row.user_id) ?? []), row.role]);
  return roles;
}

/** Replaces a user's roles inside `trx`, creating roles that don't exist yet. */
async function assignRoles(trx: Knex.Transaction, userId: string, roles: readonly string[]): Promise<void> {
  await trx('user_roles').where({ user_id: userId }).delete();
  if (roles.length === 0) return;
  await trx('roles').insert(roles.map((name) => ({ name }))).onConflict('name').ignore();
  await trx('user_roles').insert(roles.map((role) => ({ user_id: userId, role })));
}

/**
 * Deletes every engine instance of the user: its grants, what was issued under them, and its
 * sessions. The grants go first, in a statement of their own: a refresh token being stored
 * under one of them holds it until it commits (storage/payloads.ts LIVE_GRANT), so this waits
 * for it, and the next statement's fresh snapshot sees and deletes it; once the grants are gone
 * no further one is stored.
 */
async function revokeEverythingOf(trx: Knex.Transaction, userId: string): Promise<void> {
  // each grant is recorded ended as it is deleted, so the access tokens it issued read revoked too
  const { rows } = await trx.raw<{ rows: { id: string }[] }>(
    `WITH ended AS (DELETE FROM oidc_payloads WHERE type = 'Grant' AND payload->>'accountId' = ? RETURNING ${ENDED_GRANT_COLUMNS}), ${recordEndedGrantsSql('ended')}
     SELECT id FROM ended`,
    [userId],
  );
  await trx.raw(`DELETE FROM oidc_payloads WHERE payload->>'accountId' = ? OR grant_id = ANY(?::text[])`, [
    userId,
    rows.map((row) => row.id),
  ]);
}

/** The user named `username`, in any case; a name carrying U+0000 names no one (no stored one can hold it, and PostgreSQL would refuse it: text.ts). */
function byUsername(db: Knex, username: string) {
  const users = db<UserRow>('users');
  return isStorableKey(username) ? users.whereRaw('lower(username) = lower(?)', [username]) : users.whereRaw('false');
}

/**
 * SQL for one user with its roles as a single JSON value (NULL when there is none), to be read
 * in the same round trip as something that names the user (`userFromJson` turns it back into a
 * record). `idText` is an SQL expression of type text; a value that is not a UUID matches no one.
 */
export function userJsonSql(idText: string): string {
  return `(SELECT json_build_object('id', u.id, 'username', u.username, 'email', u.email, 'disabled', u.disabled, 'created_at', u.created_at, 'updated_at', u.updated_at,
      'roles', ${ROLES_OF_U})
    FROM users u
    WHERE u.id = CASE WHEN ${idText} ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN (${idText})::uuid END)`;
}

const userJsonSchema = z.object({
  id: z.string(),
  username: z.string(),
  email: z.string().nullable(),
  disabled: z.boolean(),
  created_at: z.string(),
  updated_at: z.string(),
  roles: z.array(z.string()),
});

/** The record of a user read through `userJsonSql` (`null`: no such user). */
export function userFromJson(json: unknown): UserRecord | undefined {
  if (json === null || json === undefined) return undefined;
  const row = userJsonSchema.parse(json);
  return { id: row.id, username: row.username, email: row.email, roles: row.roles, disabled: row.disabled, createdAt: new Date(row.created_at), updatedAt: new Date(row.updated_at) };
}

/** Users and their roles in PostgreSQL (or PGlite). */
export function createUserStore(db: Knex): UserStore {
  return {
    insert: (user: UserToInsert) =>
      db.transaction(async (trx) => {
        if ((await byUsername(trx, user.username).first()) !== undefined) {
          throw new UserConflictError(`the username ${user.username} is taken`);
        }
        const [row] = await trx('users')
          .insert({ id: user.id, username: user.username, email: user.email, password_hash: user.passwordHash })
          .returning<UserRow[]>('*');
        if (row === undefined) throw new Error('insert returned no row');
        await assignRoles(trx, row.id, user.roles);
        return toRecord(row, [...user.roles].sort());
      }),

    async list() {
      const rows = await listByCreation<UserRow>(db, 'users');
      const roles = await rolesOf(db, rows.map((row) => row.id));
      return rows.map((row) => toRecord(row, roles.get(row.id) ?? []));
    },

    async page(query) {
      const { items, next } = await pageByCreation<UserRow>(db, 'users', query);
      const roles = await rolesOf(db, items.map((row) => row.id));
      return { items: items.map((row) => toRecord(row, roles.get(row.id) ?? [])), next };
    },

    async lock(id) {
      const row = await lockRow<UserRow>(db, 'users', id);
      return row === undefined ? undefined : toRecord(row, (await rolesOf(db, [row.id])).get(row.id) ?? []);
    },

    replaceRoles: (username, roles) =>
      db.transaction(async (trx) => {
        const row = await byUsername(trx, username).forUpdate().first();
        if (row === undefined) return undefined;
        await assignRoles(trx, row.id, roles);
        await trx('users').where({ id: row.id }).update({ updated_at: trx.fn.now() });
        return toRecord(row, [...roles].sort());
      }),

    // disabling revokes in the same transaction: the user's grants and everything issued under
    // them (refresh tokens, codes), and its sessions, so that re-enabling brings none of them back
    setDisabled: (username, disabled) =>
      db.transaction(async (trx) => {
        if (!isStorableKey(username)) return undefined;
        const [row] = await trx('users')
          .whereRaw('lower(username) = lower(?)', [username])
          .update({ disabled, updated_at: trx.fn.now() })
          .returning<UserRow[]>('*');
        if (row === undefined) return undefined;
        if (disabled) await revokeEverythingOf(trx, row.id);
        return toRecord(row, (await rolesOf(trx, [row.id])).get(row.id) ?? []);
      }),

    setPassword: (username, passwordHash) =>
      db.transaction(async (trx) => {
        if (!isStorableKey(username)) return undefined;
        const [row] = await trx('users')
          .whereRaw('lower(username) = lower(?)', [username])
          .update({ password_hash: passwordHash, updated_at: trx.fn.now() })
          .returning<UserRow[]>('*');
        if (row === undefined) return undefined;
        await revokeEverythingOf(trx, row.id);
        return toRecord(row, (await rolesOf(trx, [row.id])).get(row.id) ?? []);
      }),

    // auth_events name the user by id and username without a foreign key: the trail outlives it
    remove: (username) =>
      db.transaction(async (trx) => {
        const row = await byUsername(trx, username).forUpdate().first();
        if (row === undefined) return undefined;
        const roles = (await rolesOf(trx, [row.id])).get(row.id) ?? [];
        await revokeEverythingOf(trx, row.id);
        // user_roles go with it (ON DELETE CASCADE)
        await trx('users').where({ id: row.id }).delete();
        return toRecord(row, roles);
      }),

    async findByUsername(username) {
      const row = await byUsername(db, username).first();
      return row === undefined ? undefined : toRecord(row, (await rolesOf(db, [row.id])).get(row.id) ?? []);
    },

    // a named statement: every sign-in reads one
    async findLoginCandidate(username): Promise<LoginCandidate | undefined> {
      if (!isStorableKey(username)) return undefined;
      const rows = await queryDirect<UserRow & { roles: string[] }>(
        db,
        'login_candidate',
        `SELECT u.id, u.username, u.email, u.password_hash, u.disabled, u.created_at, u.updated_at, ${ROLES_OF_U} AS roles
         FROM users u WHERE lower(u.username) = lower(?) LIMIT 1`,
        [username],
      );
      const row = rows[0];
      return row === undefined ? undefined : { ...toRecord(row, row.roles), passwordHash: row.password_hash };
    },

    async findById(id) {
      const rows = await queryDirect<Omit<UserRow, 'password_hash'> & { roles: string[] }>(
        db,
        'user_by_id',
        `SELECT u.id, u.username, u.email, u.disabled, u.created_at, u.updated_at, ${ROLES_OF_U} AS roles FROM users u WHERE u.id = ?`,
        [id],
      );
      const row = rows[0];
      return row === undefined ? undefined : toRecord(row, row.roles);
    },

    async updatePasswordHash(id, passwordHash) {
      await db('users').where({ id }).update({ password_hash: passwordHash, updated_at: db.fn.now() });
    },
  };
}
