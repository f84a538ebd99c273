import type { Knex } from 'knex';
import { z } from 'zod';

import { apiKeyUpdateSchema, createApiKey, newApiKeySchema, type ApiKeyRecord } from '../domain/api-keys.js';
import {
  ClientChangeError,
  clientIdSchema,
  clientUpdateSchema,
  createClient,
  deleteClient,
  listClients,
  MAX_SECRET_GRACE,
  newClientSchema,
  rotateClientSecret,
  setClientDisabled,
  showClient,
  UnknownClientError,
  updateClient,
  type ClientRecord,
} from '../domain/clients.js';
import type { AdminEvent, AuditRecord } from '../domain/audit.js';
import type { DataFacts } from '../domain/doctor.js';
import type { PasswordHasher } from '../domain/passwords.js';
import {
  createUser,
  deleteUser,
  newPasswordSchema,
  newUserSchema,
  setUserDisabled,
  setUserPassword,
  setUserRoles,
  showUser,
  UnknownUserError,
  UserConflictError,
  usernameSchema,
  type UserRecord,
} from '../domain/users.js';
import { roleList } from '../domain/validation.js';
import { keyCommands, type KeyCommand, type KeyCommandContext, type KeyCommandName } from '../keys/commands.js';
import { createAuditStore } from '../storage/audit.js';
import { migrate } from '../storage/db.js';
import { connectionLimits, passwordHashParameters } from '../storage/doctor.js';
import { createStores, type Stores } from '../storage/index.js';

/**
 * Administrative commands that need the database. The CLI runs them against the database
 * directly, or — when an issuer owns the embedded database — through that issuer's admin
 * socket; either way the same input schema and the same function run.
 */
export interface AdminContext {
  readonly db: Knex;
  readonly hasher: PasswordHasher;
  /** The key store the `keys.*` commands work on (created when one of them runs). */
  readonly keys: () => KeyCommandContext;
  /** Whether change notifications (LISTEN/NOTIFY) arrive on this database now. */
  readonly notifications: () => Promise<boolean>;
  /**
   * Who runs the commands, as the audit trail names them: `cli` for the CLI and the embedded
   * admin socket (reached only by the data directory's owner), the admin client's id for the
   * HTTP admin API.
   */
  readonly actor: string;
}

/** What a command runs with: the stores over the context's database. */
interface CommandContext extends AdminContext {
  readonly stores: Stores;
}

/** A command's result: one JSON object. */
type Output = Record<string, unknown>;

/** The type of an admin event: `admin.<kind of object>.<what happened>`. */
type AdminEventType = AdminEvent['type'];

/**
 * How a command that changes something is recorded in the audit trail (domain/audit.ts).
 *
 * The convention, for every command that writes (and only those): `type` is
 * `admin.<kind>.<past participle>` (`admin.client.created`, `admin.user.deleted`), `object` the
 * id of what changed (a client id, a user id, an API key id, a kid), and `about` the names that
 * help a reader (the user's id and username, the client's id) and a `detail` of what was set.
 * Nothing in any of them may be a secret, a password, a hash, an API key or key material: build
 * them from the input's names and the result's ids and views, never from a field that carries
 * one (`client_secret`, `key`, `password`).
 *
 * A new command that writes gets its descriptor beside its `run`, as `clients.create` has: say,
 * `clients.update` → `admin.client.updated`, `clients.disable`/`enable` → `admin.client.disabled`
 * / `admin.client.enabled`, `clients.delete` → `admin.client.deleted`, `clients.rotate-secret` →
 * `admin.client.secret_rotated` (its detail: the grace period, never either secret), each with
 * the client id as `object` and `clientId`. `runAdminCommand` does the rest.
 */
export interface AdminAudit<Input> {
  readonly type: AdminEventType | ((input: Input, result: Output) => AdminEventType);
  object(input: Input, result: Output): string;
  about?(input: Input, result: Output): Pick<AdminEvent, 'userId' | 'username' | 'clientId' | 'detail'>;
  /**
   * The command writes through a handle of its own (the key store), not the context's `db`:
   * its event is recorded right after it, not in its transaction.
   */
  readonly ownTransaction?: true;
}

export interface AdminCommand<Input> {
  readonly input: z.ZodType<Input>;
  run(context: CommandContext, input: Input): Promise<Output>;
  /** Present on every command that changes something: see {@link AdminAudit}. */
  readonly audit?: AdminAudit<Input>;
}

const iso = (value: Date | null) => (value === null ? null : value.toISOString());

function clientView(client: ClientRecord) {
  return {
    client_id: client.id,
    name: client.name,
    grants: client.grants,
    scope: client.scopes.join(' '),
    roles: client.roles,
    redirect_uris: client.redirectUris,
    resources: client.resources,
    public: client.public,
    first_party: client.firstParty,
    // seconds; null: the issuer's ACCESS_TOKEN_TTL
    access_token_ttl: client.accessTokenTtl,
    disabled: client.disabledAt !== null,
    disabled_at: iso(client.disabledAt),
    secret_rotated_at: iso(client.secretRotatedAt),
    // the secret the last rotation replaced is accepted until then; null: it is not
    previous_secret_expires_at: iso(client.previousSecretExpiresAt),
    created_at: client.createdAt.toISOString(),
  };
}

/** A change to a known client; an unknown id or a change the client cannot take is bad input (exit 2). */
async function knownClient<T>(change: () => Promise<T>): Promise<T> {
  try {
    return await change();
  } catch (error) {
    if (error instanceof UnknownClientError || error instanceof ClientChangeError) throw new AdminInputError(error.message);
    // the merged settings of an update break a rule of create's
    if (error instanceof z.ZodError) throw new AdminInputError(describeInputError(error));
    throw error;
  }
}

function apiKeyView(apiKey: ApiKeyRecord) {
  return {
    id: apiKey.id,
    name: apiKey.name,
    owner: apiKey.owner,
    scope: apiKey.scopes.join(' '),
    roles: apiKey.roles,
    resources: apiKey.resources,
    // a key from before keys named their services: refused everywhere until `api-keys update`
    needs_resources: apiKey.resources.length === 0,
    expires_at: iso(apiKey.expiresAt),
    last_used_at: iso(apiKey.lastUsedAt),
    revoked_at: iso(apiKey.revokedAt),
    created_at: apiKey.createdAt.toISOString(),
  };
}

function userView(user: UserRecord) {
  return {
    id: user.id,
    username: user.username,
    email: user.email,
    roles: user.roles,
    disabled: user.disabled,
    created_at: user.createdAt.toISOString(),
  };
}

function auditView(event: AuditRecord) {
  return {
    id: event.id,
    type: event.type,
    at: event.at.toISOString(),
    // null for sign-in events
    actor: event.actor,
    object: event.object,
    user_id: event.userId,
    username: event.username,
    client_id: event.clientId,
    ip: event.ip,
    detail: event.detail,
  };
}

/** The audit names of a command whose result is a user's view (or carries its id and username). */
function aboutUser(_input: unknown, result: Output): Pick<AdminEvent, 'userId' | 'username'> {
  return { userId: String(result['id']), username: String(result['username']) };
}

const resultId = (_input: unknown, result: Output) => String(result['id']);

async function knownUser(change: () => Promise<UserRecord>): Promise<UserRecord> {
  try {
    return await change();
  } catch (error) {
    if (error instanceof UnknownUserError) throw new AdminInputError(error.message);
    throw error;
  }
}

/** How long `doctor.facts` waits for `SELECT 1`, as /readyz does. */
const REACHABLE_TIMEOUT_MS = 3000;

/** What `sigil doctor` needs from the database: counts, ids and parameters, never a secret or a hash. */
async function doctorFacts({ db, stores, notifications }: CommandContext): Promise<DataFacts> {
  const started = performance.now();
  const reachable = await stores.reachable(REACHABLE_TIMEOUT_MS);
  const latencyMs = performance.now() - started;
  if (!reachable) {
    return { reachable, latencyMs, notificationsLive: false, connections: { max: 0, reserved: 0 }, clients: [], apiKeys: [], passwordHashes: [] };
  }
  const now = Date.now();
  // first and alone: on the embedded database's one session, LISTEN must not land inside another statement's transaction
  const notificationsLive = await notifications();
  const [connections, clients, apiKeys, passwordHashes] = await Promise.all([
    connectionLimits(db),
    stores.clients.list(),
    stores.apiKeys.list(),
    passwordHashParameters(db),
  ]);
  return {
    reachable,
    latencyMs,
    notificationsLive,
    connections,
    clients: clients.map((client) => ({
      id: client.id,
      grants: [...client.grants],
      redirectUris: [...client.redirectUris],
      resources: [...client.resources],
      accessTokenTtl: client.accessTokenTtl,
    })),
    // revoked and expired keys are refused anyway
    apiKeys: apiKeys
      .filter((key) => key.revokedAt === null && (key.expiresAt === null || key.expiresAt.getTime() > now))
      .map((key) => ({ id: key.id, resources: key.resources.length, expiresAt: key.expiresAt?.toISOString() ?? null })),
    passwordHashes,
  };
}

const empty = z.object({}).strict();
const userRoles = z.object({ username: usernameSchema, roles: roleList }).strict();
const userDisabled = z.object({ username: usernameSchema, disabled: z.boolean() }).strict();
const clientById = z.object({ id: clientIdSchema }).strict();
const clientSecretRotation = z
  .object({
    id: clientIdSchema,
    graceSeconds: z
      .number({ error: `--grace is a whole number of seconds from 0 to ${MAX_SECRET_GRACE}` })
      .int(`--grace is a whole number of seconds from 0 to ${MAX_SECRET_GRACE}`)
      .min(0, `--grace is a whole number of seconds from 0 to ${MAX_SECRET_GRACE}`)
      .max(MAX_SECRET_GRACE, `--grace is at most ${MAX_SECRET_GRACE} seconds (30 days)`)
      .default(0),
  })
  .strict();
const byId = z.object({ id: z.string().regex(/^[0-9a-f]{32}$/u, 'an API key id is 32 hexadecimal characters') }).strict();
const byUsername = z.object({ username: usernameSchema }).strict();
const LIMIT_MESSAGE = 'a limit is a whole number from 1 to 1000';
const auditQuery = z
  .object({
    since: z.union([z.iso.datetime({ offset: true }), z.iso.date()], 'since is an ISO 8601 date or date and time (2026-12-01, 2026-12-01T09:30:00Z)').optional(),
    type: z
      .string()
      .max(100)
      .regex(/^[a-z][a-z_]*(\.[a-z][a-z_]*)*\.?$/u, 'a type is an event type (admin.user.deleted) or a prefix ending in "." (admin.)')
      .optional(),
    limit: z.number(LIMIT_MESSAGE).int(LIMIT_MESSAGE).min(1, LIMIT_MESSAGE).max(1000, LIMIT_MESSAGE).default(100),
  })
  .strict();

/** The key set as an audit object, for commands that change several keys at once. */
const KEY_SET = 'signing-keys';

/** The audit descriptor of a command on one client (its input names it by `id`), with an optional detail. */
function aboutClient<Input extends { readonly id: string }>(type: AdminEventType, detail?: (input: Input, result: Output) => Record<string, unknown>): AdminAudit<Input> {
  return {
    type,
    object: (input) => input.id,
    about: (input, result) => ({ clientId: input.id, ...(detail === undefined ? {} : { detail: detail(input, result) }) }),
  };
}

/** A key command run on the context's key store (keys/commands.ts), with the same input schema. */
function keyCommand(name: KeyCommandName, audit?: AdminAudit<never>): AdminCommand<unknown> {
  const command = keyCommands[name] as KeyCommand<unknown>;
  return {
    input: command.input,
    run: (context, input) => command.run(context.keys(), input),
    ...(audit === undefined ? {} : { audit: { ...(audit as AdminAudit<unknown>), ownTransaction: true } }),
  };
}

export const adminCommands = {
  'keys.list': keyCommand('keys.list'),
  'keys.generate': keyCommand('keys.generate', {
    type: 'admin.key.generated',
    object: (_input, result) => String(result['kid']),
    about: (_input, result) => ({ detail: { state: result['state'] } }),
  }),
  'keys.rotate': keyCommand('keys.rotate', {
    type: 'admin.key.rotated',
    object: (_input, result) => String(result['current']),
    about: (input: { force: boolean }, result) => ({ detail: { current: result['current'], retired: result['retired'], next: result['next'], force: input.force } }),
  }),
  'keys.retire': keyCommand('keys.retire', {
    type: 'admin.key.retired',
    object: (input: { kid: string }) => input.kid,
  }),
  'keys.import': keyCommand('keys.import', {
    type: 'admin.key.imported',
    object: () => KEY_SET,
    // the directory's path is the operator's; the kids are public
    about: (_input, result) => ({ detail: { imported: result['imported'], skipped: result['skipped'] } }),
  }),
  'keys.reencrypt': keyCommand('keys.reencrypt', {
    type: 'admin.key.reencrypted',
    object: () => KEY_SET,
    about: (_input, result) => ({ detail: { reencrypted: result['reencrypted'], total: result['total'] } }),
  }),
  migrate: {
    input: empty,
    run: async ({ db }) => ({ applied: await migrate(db) }),
  } satisfies AdminCommand<z.infer<typeof empty>>,
  'clients.create': {
    input: newClientSchema,
    run: async ({ stores }, input) => {
      const { client, clientSecret } = await createClient(stores.clients, input);
      return { client_id: client.id, ...(clientSecret === undefined ? {} : { client_secret: clientSecret }), client: clientView(client) };
    },
    audit: {
      type: 'admin.client.created',
      object: (_input, result) => String(result['client_id']),
      // the view, never the secret beside it
      about: (_input, result) => ({ clientId: String(result['client_id']), detail: { client: result['client'] } }),
    },
  } satisfies AdminCommand<z.infer<typeof newClientSchema>>,
  'clients.list': {
    input: empty,
    run: async ({ stores }) => ({ clients: (await listClients(stores.clients)).map(clientView) }),
  } satisfies AdminCommand<z.infer<typeof empty>>,
  'clients.show': {
    input: clientById,
    run: async ({ stores }, { id }) => clientView(await knownClient(() => showClient(stores.clients, id))),
  } satisfies AdminCommand<z.infer<typeof clientById>>,
  'clients.update': {
    input: clientUpdateSchema,
    run: async ({ stores }, input) => clientView(await knownClient(() => updateClient(stores.clients, input))),
    // what was asked for, and the client as it is now (no secret is ever in either)
    audit: aboutClient('admin.client.updated', (input, result) => ({
      changed: Object.entries(input).flatMap(([field, value]) => (field === 'id' || value === undefined ? [] : [field])),
      client: result,
    })),
  } satisfies AdminCommand<z.infer<typeof clientUpdateSchema>>,
  'clients.disable': {
    input: clientById,
    run: async ({ stores }, { id }) => clientView(await knownClient(() => setClientDisabled(stores.clients, id, true))),
    audit: aboutClient('admin.client.disabled'),
  } satisfies AdminCommand<z.infer<typeof clientById>>,
  'clients.enable': {
    input: clientById,
    run: async ({ stores }, { id }) => clientView(await knownClient(() => setClientDisabled(stores.clients, id, false))),
    audit: aboutClient('admin.client.enabled'),
  } satisfies AdminCommand<z.infer<typeof clientById>>,
  'clients.delete': {
    input: clientById,
    run: async ({ stores }, { id }) => ({ deleted: true, ...clientView(await knownClient(() => deleteClient(stores.clients, id))) }),
    audit: aboutClient('admin.client.deleted'),
  } satisfies AdminCommand<z.infer<typeof clientById>>,
  'clients.rotate-secret': {
    input: clientSecretRotation,
    run: async ({ stores }, { id, graceSeconds }) => {
      const { client, clientSecret } = await knownClient(() => rotateClientSecret(stores.clients, id, graceSeconds));
      return { client_id: client.id, client_secret: clientSecret, client: clientView(client) };
    },
    // the grace period, never either secret
    audit: aboutClient('admin.client.secret_rotated', (input) => ({ grace_seconds: input.graceSeconds })),
  } satisfies AdminCommand<z.infer<typeof clientSecretRotation>>,
  'api-keys.create': {
    input: newApiKeySchema,
    run: async ({ stores }, input) => {
      const { record, key } = await createApiKey(stores.apiKeys, input);
      return { id: record.id, key, api_key: apiKeyView(record) };
    },
    audit: {
      type: 'admin.api_key.created',
      object: resultId,
      // the view, never the key beside it
      about: (_input, result) => ({ detail: { api_key: result['api_key'] } }),
    },
  } satisfies AdminCommand<z.infer<typeof newApiKeySchema>>,
  'api-keys.list': {
    input: empty,
    run: async ({ stores }) => ({ api_keys: (await stores.apiKeys.list()).map(apiKeyView) }),
  } satisfies AdminCommand<z.infer<typeof empty>>,
  'api-keys.update': {
    input: apiKeyUpdateSchema,
    run: async ({ stores }, { id, resources }) => {
      const updated = await stores.apiKeys.setResources(id, resources);
      if (updated === undefined) throw new AdminInputError(`no API key with id ${id}`);
      return apiKeyView(updated);
    },
    audit: { type: 'admin.api_key.updated', object: resultId, about: (input) => ({ detail: { resources: input.resources } }) },
  } satisfies AdminCommand<z.infer<typeof apiKeyUpdateSchema>>,
  'api-keys.revoke': {
    input: byId,
    run: async ({ stores }, { id }) => {
      const revoked = await stores.apiKeys.revoke(id);
      if (revoked === undefined) throw new AdminInputError(`no API key with id ${id}`);
      return apiKeyView(revoked);
    },
    audit: { type: 'admin.api_key.revoked', object: resultId },
  } satisfies AdminCommand<z.infer<typeof byId>>,
  'users.create': {
    input: newUserSchema,
    run: async ({ stores, hasher }, input) => {
      try {
        const user = await createUser(stores.users, input, hasher);
        return { id: user.id, username: user.username, user: userView(user) };
      } catch (error) {
        if (error instanceof UserConflictError) throw new AdminInputError(error.message);
        throw error;
      }
    },
    audit: {
      type: 'admin.user.created',
      object: resultId,
      // never the password
      about: (input, result) => ({ ...aboutUser(input, result), detail: { roles: (result['user'] as Output)['roles'], email: input.email ?? null } }),
    },
  } satisfies AdminCommand<z.infer<typeof newUserSchema>>,
  'users.list': {
    input: empty,
    run: async ({ stores }) => ({ users: (await stores.users.list()).map(userView) }),
  } satisfies AdminCommand<z.infer<typeof empty>>,
  'users.set-roles': {
    input: userRoles,
    run: async ({ stores }, { username, roles }) => userView(await knownUser(() => setUserRoles(stores.users, username, roles))),
    audit: { type: 'admin.user.roles_set', object: resultId, about: (input, result) => ({ ...aboutUser(input, result), detail: { roles: result['roles'] } }) },
  } satisfies AdminCommand<z.infer<typeof userRoles>>,
  'users.disable': {
    input: userDisabled,
    run: async ({ stores }, { username, disabled }) => userView(await knownUser(() => setUserDisabled(stores.users, username, disabled))),
    audit: { type: ({ disabled }) => (disabled ? 'admin.user.disabled' : 'admin.user.enabled'), object: resultId, about: aboutUser },
  } satisfies AdminCommand<z.infer<typeof userDisabled>>,
  'users.show': {
    input: byUsername,
    run: async ({ stores }, { username }) => userView(await knownUser(() => showUser(stores.users, username))),
  } satisfies AdminCommand<z.infer<typeof byUsername>>,
  'users.set-password': {
    input: newPasswordSchema,
    // and every grant and session of the user is revoked (domain/users.ts setUserPassword)
    run: async ({ stores, hasher }, input) => ({ ...userView(await knownUser(() => setUserPassword(stores.users, input, hasher))), grants_revoked: true }),
    audit: { type: 'admin.user.password_set', object: resultId, about: aboutUser },
  } satisfies AdminCommand<z.infer<typeof newPasswordSchema>>,
  'users.delete': {
    input: byUsername,
    run: async ({ stores }, { username }) => {
      const user = await knownUser(() => deleteUser(stores.users, username));
      return { id: user.id, username: user.username, deleted: true, grants_revoked: true };
    },
    audit: { type: 'admin.user.deleted', object: resultId, about: aboutUser },
  } satisfies AdminCommand<z.infer<typeof byUsername>>,
  'doctor.facts': {
    input: empty,
    run: async (context) => ({ ...(await doctorFacts(context)) }),
  } satisfies AdminCommand<z.infer<typeof empty>>,
  'audit.list': {
    input: auditQuery,
    run: async ({ stores }, { since, type, limit }) => ({
      events: (await stores.audit.list({ since: since === undefined ? undefined : new Date(since), type, limit })).map(auditView),
    }),
  } satisfies AdminCommand<z.infer<typeof auditQuery>>,
} as const;

export type AdminCommandName = keyof typeof adminCommands;

export function isAdminCommandName(name: string): name is AdminCommandName {
  return Object.hasOwn(adminCommands, name);
}

/** Thrown for input that fails a command's schema: the CLI exits 2 on it. */
export class AdminInputError extends Error {
  override name = 'AdminInputError';
}

/** One line describing what is wrong with an input. */
export function describeInputError(error: z.ZodError): string {
  return error.issues
    .map((issue) => (issue.path.length > 0 ? `${issue.path.join('.')}: ${issue.message}` : issue.message))
    .join('; ');
}

/** The event `audit` describes, for a command run by `actor`. */
function adminEvent<Input>(audit: AdminAudit<Input>, actor: string, input: Input, result: Output): AdminEvent {
  return {
    type: typeof audit.type === 'string' ? audit.type : audit.type(input, result),
    actor,
    object: audit.object(input, result),
    ...audit.about?.(input, result),
  };
}

/**
 * Validates `input` for `name` and runs the command. A command that changes something (one
 * with an `audit`) runs in a transaction that also records its admin event, so that no change
 * goes unrecorded and a failed one records nothing; one that writes through the key store
 * records it right after.
 */
export async function runAdminCommand(context: AdminContext, name: AdminCommandName, input: unknown): Promise<Output> {
  const command = adminCommands[name] as AdminCommand<unknown>;
  const parsed = command.input.safeParse(input);
  if (!parsed.success) throw new AdminInputError(describeInputError(parsed.error));
  const { audit } = command;
  if (audit === undefined) return command.run({ ...context, stores: createStores(context.db) }, parsed.data);
  if (audit.ownTransaction === true) {
    const result = await command.run({ ...context, stores: createStores(context.db) }, parsed.data);
    await createAuditStore(context.db).appendAdmin(adminEvent(audit, context.actor, parsed.data, result));
    return result;
  }
  return context.db.transaction(async (trx) => {
    const result = await command.run({ ...context, db: trx, stores: createStores(trx) }, parsed.data);
    await createAuditStore(trx).appendAdmin(adminEvent(audit, context.actor, parsed.data, result));
    return result;
  });
}
