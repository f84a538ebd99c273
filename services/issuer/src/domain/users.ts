import { randomUUID } from 'node:crypto';

import { z } from 'zod';

import type { Page, PageQuery } from './pages.js';
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
      .refine((value) => Buffer.byteLength(value) <= PASSWORD_MAX_BYTES, `a password must be at most ${PASSWORD_MAX_BYTES} bytes`)
      .describe(`at least ${PASSWORD_MIN_LENGTH} characters and at most ${PASSWORD_MAX_BYTES} bytes of UTF-8`),
    roles: roleList.default([]),
    email: z.email('an email must be a valid address').max(254).optional(),
  })
  .strict();

export type NewUser = z.input<typeof newUserSchema>;

/** A new password for an existing user: the same rules as at creation. */
export const newPasswordSchema = z
  .object({ username: usernameSchema, password: newUserSchema.shape.password })
  .strict();

export type NewPassword = z.input<typeof newPasswordSchema>;

export interface UserRecord {
  readonly id: string;
  readonly username: string;
  readonly email: string | null;
  /** Sorted. */
  readonly roles: readonly string[];
  readonly disabled: boolean;
  readonly createdAt: Date;
  /** When its row last changed (roles, password, status): OpenID Connect's `updated_at`. */
  readonly updatedAt: Date;
}

/** What sign-in needs: the hash is only ever read on this path. */
export interface LoginCandidate extends UserRecord {
  readonly passwordHash: string;
}

/** A user as it is first stored. */
export interface UserToInsert {
  readonly id: string;
  readonly username: string;
  readonly email: string | null;
  readonly passwordHash: string;
  readonly roles: readonly string[];
}

/** Where users and their roles are kept. Usernames are unique and looked up in any case. */
export interface UserStore {
  /** Stores a user and its roles together. @throws UserConflictError when the username is taken */
  insert(user: UserToInsert): Promise<UserRecord>;
  /** Every user, oldest first. */
  list(): Promise<UserRecord[]>;
  /** A page of {@link UserStore.list}'s order. */
  page(query: PageQuery): Promise<Page<UserRecord>>;
  /** Locks the user's row until the end of the caller's transaction; `id` must be a UUID. undefined: no such user. */
  lock(id: string): Promise<UserRecord | undefined>;
  /** Replaces the user's roles (creating roles that don't exist yet); undefined: no such user. */
  replaceRoles(username: string, roles: readonly string[]): Promise<UserRecord | undefined>;
  /** Disabling also revokes every grant and session of the user, for good. undefined: no such user. */
  setDisabled(username: string, disabled: boolean): Promise<UserRecord | undefined>;
  /** Replaces the password hash and revokes every grant and session of the user. undefined: no such user. */
  setPassword(username: string, passwordHash: string): Promise<UserRecord | undefined>;
  /**
   * Revokes every grant and session of the user and deletes it with its roles, in one
   * transaction; its audit events stay. undefined: no such user.
   */
  remove(username: string): Promise<UserRecord | undefined>;
  findByUsername(username: string): Promise<UserRecord | undefined>;
  findLoginCandidate(username: string): Promise<LoginCandidate | undefined>;
  /** `id` must be a UUID. */
  findById(id: string): Promise<UserRecord | undefined>;
  updatePasswordHash(id: string, passwordHash: string): Promise<void>;
}

export class UserConflictError extends Error {
  override name = 'UserConflictError';
}

export class UnknownUserError extends Error {
  override name = 'UnknownUserError';
}

/** Creates a user and its roles together. @throws UserConflictError when the username is taken */
export async function createUser(users: UserStore, input: NewUser, hasher: PasswordHasher): Promise<UserRecord> {
  const user = newUserSchema.parse(input);
  return insertUser(users, user, await hasher.hash(user.password));
}

/**
 * Stores a validated new user whose password is already hashed: a caller in a transaction hashes
 * first (an argon2id hash takes tens of milliseconds, which the transaction, and on the embedded
 * database every other statement, would otherwise wait for).
 * @throws UserConflictError when the username is taken
 */
export function insertUser(users: UserStore, user: z.output<typeof newUserSchema>, passwordHash: string): Promise<UserRecord> {
  return users.insert({ id: randomUUID(), username: user.username, email: user.email ?? null, passwordHash, roles: user.roles });
}

function known(username: string, user: UserRecord | undefined): UserRecord {
  if (user === undefined) throw new UnknownUserError(`no user named ${username}`);
  return user;
}

/** Replaces a user's roles. @throws UnknownUserError */
export async function setUserRoles(users: UserStore, username: string, roles: readonly string[]): Promise<UserRecord> {
  return known(username, await users.replaceRoles(username, roles));
}

/** Disables (or re-enables) sign-in for a user. @throws UnknownUserError */
export async function setUserDisabled(users: UserStore, username: string, disabled: boolean): Promise<UserRecord> {
  return known(username, await users.setDisabled(username, disabled));
}

/** One user. @throws UnknownUserError */
export async function showUser(users: UserStore, username: string): Promise<UserRecord> {
  return known(username, await users.findByUsername(username));
}

/**
 * Gives a user a new password (hashed as at creation). It also revokes every grant and
 * session the user holds: a reset after a compromise must lock the intruder out, and
 * refresh tokens obtained with the old password would outlive it otherwise.
 * @throws UnknownUserError
 */
export async function setUserPassword(users: UserStore, input: NewPassword, hasher: PasswordHasher): Promise<UserRecord> {
  const { username, password } = newPasswordSchema.parse(input);
  return replacePassword(users, username, await hasher.hash(password));
}

/** {@link setUserPassword} with the new password already hashed (see {@link insertUser}). @throws UnknownUserError */
export async function replacePassword(users: UserStore, username: string, passwordHash: string): Promise<UserRecord> {
  return known(username, await users.setPassword(username, passwordHash));
}

/** Deletes a user, revoking every grant and session it holds. @throws UnknownUserError */
export async function deleteUser(users: UserStore, username: string): Promise<UserRecord> {
  return known(username, await users.remove(username));
}

const uuidSchema = z.uuid();

/** One user with its roles (token requests read it on every issue); an id that is not a UUID names no one. */
export async function findUser(users: UserStore, id: string): Promise<UserRecord | undefined> {
  return uuidSchema.safeParse(id).success ? users.findById(id) : undefined;
}
