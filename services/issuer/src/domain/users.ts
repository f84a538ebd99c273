import { randomUUID } from 'node:crypto';

import type { Knex } from 'knex';
import { z } from 'zod';

import { prepared } from '../storage/prepared.js';
import { PASSWORD_MAX_BYTES, PASSWORD_MIN_LENGTH, type PasswordHasher } from './passwords.js';
import { roleList } from './validation.js';

export const usernameSchema = z
  .string()
  .trim()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$/u, 'a username is 1–100 letters, digits, ".", "_", "@", "+" or "-", starting with a letter or digit');

export const newUserSchema = z
  .object({
    username: usernameSchema,
    password: z
      .string()
      .refine((value) => [...value].length >= PASSWORD_MIN_LENGTH, `a password must be at least ${PASSWORD_MIN_LENGTH} characters`)
      .refine((value) => Buffer.byteLength(value) <= PASSWORD_MAX_BYTES, `a password must be at most ${PASSWORD_MAX_BYTES} bytes`),
    roles: roleList.default([]),
    email: z.email('an email must be a valid address').max(254).optional(),
  })
  .strict();

export type NewUser = z.input<typeof newUserSchema>;

export interface UserRecord {
  readonly id: string;
  readonly username: string;
  readonly email: string | null;
  readonly roles: readonly string[];
  readonly disabled: boolean;
  readonly createdAt: Date;
}

/** What sign-in needs: the hash is only ever read on this path. */
export interface LoginCandidate extends UserRecord {
  readonly passwordHash: string;
}

interface UserRow {
  id: string;
  username: string;
  email: string | null;
  password_hash: string;
  disabled: boolean;
  created_at: Date;
}

export class UserConflictError extends Error {
  override name = 'UserConflictError';
}

export class UnknownUserError extends Error {
  override name = 'UnknownUserError';
}

async function rolesOf(db: Knex, userIds: string[]): Promise<Map<string, string[]>> {
  const rows = userIds.length === 0 ? [] : await db('user_roles').whereIn('user_id', userIds).orderBy('role').select<{ user_id: string; role: string }[]>('user_id', 'role');
  const roles = new Map<string, string[]>();
  for (const row of rows) roles.set(row.user_id, [...(roles.get(row.user_id) ?? []), row.role]);
  return roles;
}

/** Users with their roles (sorted) as one `roles` array column. */
function withRoles(db: Knex) {
  return db('users')
    .leftJoin('user_roles', 'user_roles.user_id', 'users.id')
    .groupBy('users.id')
    .select('users.*', db.raw(`coalesce(array_agg(user_roles.role order by user_roles.role) filter (where user_roles.role is not null), '{}') as roles`));
}

function toRecord(row: UserRow, roles: string[]): UserRecord {
  return { id: row.id, username: row.username, email: row.email, roles, disabled: row.disabled, createdAt: new Date(row.created_at) };
}

/** Replaces a user's roles inside `trx`, creating roles that don't exist yet. */
async function assignRoles(trx: Knex.Transaction, userId: string, roles: readonly string[]): Promise<void> {
  await trx('user_roles').where({ user_id: userId }).delete();
  if (roles.length === 0) return;
  await trx('roles').insert(roles.map((name) => ({ name }))).onConflict('name').ignore();
  await trx('user_roles').insert(roles.map((role) => ({ user_id: userId, role })));
}

function byUsername(db: Knex, username: string) {
  return db<UserRow>('users').whereRaw('lower(username) = lower(?)', [username]);
}

/** Creates a user and its roles in one transaction. @throws UserConflictError when the username is taken */
export async function createUser(db: Knex, input: NewUser, hasher: PasswordHasher): Promise<UserRecord> {
  const user = newUserSchema.parse(input);
  const passwordHash = await hasher.hash(user.password);
  return db.transaction(async (trx) => {
    if ((await byUsername(trx, user.username).first()) !== undefined) {
      throw new UserConflictError(`the username ${user.username} is taken`);
    }
    const [row] = await trx('users')
      .insert({ id: randomUUID(), username: user.username, email: user.email ?? null, password_hash: passwordHash })
      .returning<UserRow[]>('*');
    if (row === undefined) throw new Error('insert returned no row');
    await assignRoles(trx, row.id, user.roles);
    return toRecord(row, [...user.roles].sort());
  });
}

export async function listUsers(db: Knex): Promise<UserRecord[]> {
  const rows = await db<UserRow>('users').select('*').orderBy('created_at').orderBy('id');
  const roles = await rolesOf(db, rows.map((row) => row.id));
  return rows.map((row) => toRecord(row, roles.get(row.id) ?? []));
}

/** Replaces a user's roles. @throws UnknownUserError */
export async function setUserRoles(db: Knex, username: string, roles: readonly string[]): Promise<UserRecord> {
  return db.transaction(async (trx) => {
    const row = await byUsername(trx, username).forUpdate().first();
    if (row === undefined) throw new UnknownUserError(`no user named ${username}`);
    await assignRoles(trx, row.id, roles);
    await trx('users').where({ id: row.id }).update({ updated_at: trx.fn.now() });
    return toRecord(row, [...roles].sort());
  });
}

/** Disables (or re-enables) sign-in for a user. @throws UnknownUserError */
export async function setUserDisabled(db: Knex, username: string, disabled: boolean): Promise<UserRecord> {
  const [row] = await db('users')
    .whereRaw('lower(username) = lower(?)', [username])
    .update({ disabled, updated_at: db.fn.now() })
    .returning<UserRow[]>('*');
  if (row === undefined) throw new UnknownUserError(`no user named ${username}`);
  return toRecord(row, (await rolesOf(db, [row.id])).get(row.id) ?? []);
}

/** SQL: the roles (sorted, `{}` for none) of the user row aliased `u`. */
const ROLES_OF_U = `coalesce((SELECT array_agg(r.role ORDER BY r.role) FROM user_roles r WHERE r.user_id = u.id), '{}')`;

/** The user signing in as `username` (any case), with the password hash; a named statement, as every sign-in reads one. */
export async function findLoginCandidate(db: Knex, username: string): Promise<LoginCandidate | undefined> {
  const { rows } = await db
    .raw<{ rows: (UserRow & { roles: string[] })[] }>(
      `SELECT u.id, u.username, u.email, u.password_hash, u.disabled, u.created_at, ${ROLES_OF_U} AS roles
       FROM users u WHERE lower(u.username) = lower(?) LIMIT 1`,
      [username],
    )
    .options(prepared('login_candidate'));
  const row = rows[0];
  return row === undefined ? undefined : { ...toRecord(row, row.roles), passwordHash: row.password_hash };
}

const uuidSchema = z.uuid();

/** One user with its roles, in one query (token requests read it on every issue). */
export async function findUser(db: Knex, id: string): Promise<UserRecord | undefined> {
  if (!uuidSchema.safeParse(id).success) return undefined;
  const row = await withRoles(db)
    .where('users.id', id)
    .first<(UserRow & { roles: string[] }) | undefined>();
  return row === undefined ? undefined : toRecord(row, row.roles);
}

/**
 * SQL for one user with its roles as a single JSON value (NULL when there is none), to be read
 * in the same round trip as something that names the user (`userFromJson` turns it back into a
 * record). `idText` is an SQL expression of type text; a value that is not a UUID matches no one.
 */
export function userJsonSql(idText: string): string {
  return `(SELECT json_build_object('id', u.id, 'username', u.username, 'email', u.email, 'disabled', u.disabled, 'created_at', u.created_at,
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
  roles: z.array(z.string()),
});

/** The record of a user read through `userJsonSql` (`null`: no such user). */
export function userFromJson(json: unknown): UserRecord | undefined {
  if (json === null || json === undefined) return undefined;
  const row = userJsonSchema.parse(json);
  return { id: row.id, username: row.username, email: row.email, roles: row.roles, disabled: row.disabled, createdAt: new Date(row.created_at) };
}

export async function updatePasswordHash(db: Knex, id: string, passwordHash: string): Promise<void> {
  await db('users').where({ id }).update({ password_hash: passwordHash, updated_at: db.fn.now() });
}
