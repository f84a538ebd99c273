import type { Knex } from 'knex';
import { z } from 'zod';

import { apiKeyUpdateSchema, createApiKey, newApiKeySchema, rotateApiKey } from '../domain/api-keys.js';
import {
  ClientChangeError,
  clientIdSchema,
  clientUpdateSchema,
  createClient,
  deleteClient,
  listClients,
  MAX_SECRET_GRACE,
  newClientSchema,
  pageClients,
  rotateClientSecret,
  setClientDisabled,
  showClient,
  UnknownClientError,
  updateClient,
} from '../domain/clients.js';
import type { AdminEvent } from '../domain/audit.js';
import type { DataFacts } from '../domain/doctor.js';
import type { Page, PagePosition, PageQuery } from '../domain/pages.js';
import type { PasswordHasher } from '../domain/passwords.js';
import {
  deleteUser,
  insertUser,
  newPasswordSchema,
  newUserSchema,
  replacePassword,
  setUserDisabled,
  setUserRoles,
  showUser,
  UnknownUserError,
  UserConflictError,
  usernameSchema,
  type UserRecord,
} from '../domain/users.js';
import { roleList } from '../domain/validation.js';
import { keyCommandInput, keyCommands, type KeyCommand, type KeyCommandContext, type KeyCommandName } from '../keys/commands.js';
import { createAuditStore } from '../storage/audit.js';
import { migrate } from '../storage/db.js';
import { connectionLimits, passwordHashParameters } from '../storage/doctor.js';
import { createStores, type Stores } from '../storage/index.js';
import { apiKeyView, auditEventView, clientView, userView, wireName } from './views.js';

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
  /**
   * Called after a `keys.*` command changed the keys, in an issuer: it loads them at once, so
   * that the change is in effect here when the command answers (other replicas follow it as
   * they would a CLI's).
   */
  readonly keysChanged?: () => Promise<void>;
  /**
   * Called after a command changed client `id` and committed, in an issuer: its cached copy is
   * dropped at once, so that a rotated secret or a disabling is in effect here when the command
   * answers (other replicas drop theirs on the change notification).
   */
  readonly clientChanged?: (id: string) => void;
  /** Called once per change, after it and its audit event are committed (the issuer logs it: event-log.ts). */
  readonly recorded?: (event: AdminEvent) => void;
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
 * A command that writes has its descriptor beside its `run`: `clients.rotate-secret`'s, for
 * one, is `admin.client.secret_rotated` with the client id as `object` and `clientId` and the
 * grace period (never either secret) as its detail. `runAdminCommand` does the rest.
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

export interface AdminCommand<Input, Prepared = undefined> {
  readonly input: z.ZodType<Input, unknown>;
  /**
   * Work done before the command's transaction opens, its result handed to `run`: hashing a
   * password, which the transaction (and on the embedded database, every other statement) must
   * not wait for.
   */
  prepare?(context: AdminContext, input: Input): Promise<Prepared>;
  run(context: CommandContext, input: Input, prepared: Prepared): Promise<Output>;
  /**
   * On a command that changes one object: that object's current view (what its `show` command
   * answers), its row locked until the command's transaction ends, for a precondition (the
   * admin API's `If-Match`). @throws AdminNotFoundError when there is none
   */
  current?(context: CommandContext, input: Input): Promise<Output>;
  /** Present on every command that changes something: see {@link AdminAudit}. */
  readonly audit?: AdminAudit<Input>;
}

/** A change to a known client; an unknown id is {@link AdminNotFoundError}, a change the client cannot take bad input (exit 2). */
async function knownClient<T>(change: () => Promise<T>): Promise<T> {
  try {
    return await change();
  } catch (error) {
    if (error instanceof UnknownClientError) throw new AdminNotFoundError(error.message);
    if (error instanceof ClientChangeError) throw new AdminInputError(error.message);
    // the merged settings of an update break a rule of create's
    if (error instanceof z.ZodError) throw new AdminInputError(describeInputError(error), error.issues);
    throw error;
  }
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
    if (error instanceof UnknownUserError) throw new AdminNotFoundError(error.message);
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
const clientById = z.object({ id: clientIdSchema }).strict();
const GRACE_RULE = `--grace is a whole number of seconds from 0 to ${MAX_SECRET_GRACE}`;
const clientSecretRotation = z
  .object({
    id: clientIdSchema,
    graceSeconds: z
      .number({ error: GRACE_RULE })
      .int(GRACE_RULE)
      .min(0, GRACE_RULE)
      .max(MAX_SECRET_GRACE, `--grace is at most ${MAX_SECRET_GRACE} seconds (30 days)`)
      .default(0),
  })
  .strict();
const apiKeyId = z.string().regex(/^[0-9a-f]{32}$/u, 'an API key id is 32 hexadecimal characters');
const byId = z.object({ id: apiKeyId }).strict();

/**
 * The fields that name one user: its `id` (a UUID: the admin API's) or its `username` (the
 * CLI's), exactly one of them. Commands on a user spread them into their input.
 */
const userSelector = {
  id: z.uuid('a user id is a UUID').optional(),
  username: usernameSchema.optional(),
};
type UserSelector = { readonly id?: string | undefined; readonly username?: string | undefined };
const ONE_USER = { message: 'name the user by id or by username (exactly one)' };
const namesOneUser = (input: UserSelector) => (input.id === undefined) !== (input.username === undefined);
const userRef = z.object(userSelector).strict().refine(namesOneUser, ONE_USER);
const userRoles = z.object({ ...userSelector, roles: roleList }).strict().refine(namesOneUser, ONE_USER);
const userDisabled = z.object({ ...userSelector, disabled: z.boolean() }).strict().refine(namesOneUser, ONE_USER);
const userUpdate = z
  .object({ ...userSelector, roles: roleList.optional(), disabled: z.boolean().optional() })
  .strict()
  .refine(namesOneUser, ONE_USER)
  .refine((input) => input.roles !== undefined || input.disabled !== undefined, 'nothing to change: give roles or disabled');
const userPassword = z.object({ ...userSelector, password: newPasswordSchema.shape.password }).strict().refine(namesOneUser, ONE_USER);

/**
 * The username of the user `selector` names, its row locked until the caller's transaction
 * ends when named by id (a username is what the user store's changes take).
 * @throws AdminNotFoundError
 */
async function usernameOf({ stores }: CommandContext, selector: UserSelector): Promise<string> {
  if (selector.username !== undefined) return selector.username;
  const id = String(selector.id);
  const user = await stores.users.lock(id);
  if (user === undefined) throw new AdminNotFoundError(`no user with id ${id}`);
  return user.username;
}

const LIMIT_MESSAGE = 'a limit is a whole number from 1 to 1000';
const pageLimit = z.number(LIMIT_MESSAGE).int(LIMIT_MESSAGE).min(1, LIMIT_MESSAGE).max(1000, LIMIT_MESSAGE);
const CURSOR_MESSAGE = 'a cursor is a next_cursor this list returned';
const cursorText = z.string(CURSOR_MESSAGE).max(200, CURSOR_MESSAGE).regex(/^[A-Za-z0-9_-]+$/u, CURSOR_MESSAGE);

/** A page position as a cursor: opaque to callers (base64url JSON), checked when it comes back. */
function encodeCursor(position: PagePosition | undefined): string | null {
  return position === undefined ? null : Buffer.from(JSON.stringify([position.at, position.id])).toString('base64url');
}

/**
 * A time the database can compare: ISO 8601 as `Date#toISOString` writes it (what a cursor
 * carries), within years 1970–9999.
 */
const cursorTime = z.iso.datetime().refine((at) => {
  const time = new Date(at);
  // (a refinement runs even when the format failed: no toISOString of an invalid date)
  return !Number.isNaN(time.getTime()) && time.toISOString() === at && time.getUTCFullYear() >= 1970 && time.getUTCFullYear() <= 9999;
});

/** The input of a list in creation order: everything, or a page of `limit` after `cursor` (whose id `id` checks). */
function pageInput(id: z.ZodType<string>) {
  const position = z.tuple([cursorTime, id]);
  return z
    .object({
      limit: pageLimit.optional(),
      cursor: cursorText
        .transform((cursor, ctx): PagePosition => {
          let decoded: unknown;
          try {
            decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
          } catch {
            decoded = undefined;
          }
          const parsed = position.safeParse(decoded);
          if (!parsed.success) {
            ctx.addIssue({ code: 'custom', message: CURSOR_MESSAGE });
            return z.NEVER;
          }
          return { at: parsed.data[0], id: parsed.data[1] };
        })
        .optional(),
    })
    .strict();
}

/** A page's size when none is asked for: the admin API's lists, `audit list`, and a cursor given without a limit. */
export const DEFAULT_PAGE_SIZE = 100;

/** A whole list (no limit: the CLI's) or one page of it (`next_cursor` null on the last). */
async function listed<T, View>(input: { limit?: number | undefined; cursor?: PagePosition | undefined }, all: () => Promise<T[]>, page: (query: PageQuery) => Promise<Page<T>>, view: (item: T) => View) {
  if (input.limit === undefined && input.cursor === undefined) return { items: (await all()).map(view), next_cursor: null };
  const { items, next } = await page({ after: input.cursor, limit: input.limit ?? DEFAULT_PAGE_SIZE });
  return { items: items.map(view), next_cursor: encodeCursor(next) };
}


const clientPage = pageInput(clientIdSchema);
const userPage = pageInput(z.uuid());
const apiKeyPage = pageInput(apiKeyId);
/** An event id: a positive bigint (at most 2^63 − 1). */
const AUDIT_CURSOR = z
  .string(CURSOR_MESSAGE)
  .regex(/^[1-9][0-9]{0,18}$/u, { error: CURSOR_MESSAGE, abort: true })
  // (a refinement runs even when the pattern failed, unless it aborts: BigInt only on digits)
  .refine((cursor) => /^[0-9]+$/u.test(cursor) && BigInt(cursor) <= 9_223_372_036_854_775_807n, CURSOR_MESSAGE);
const SINCE_MESSAGE = 'since is an ISO 8601 date or date and time (2026-12-01, 2026-12-01T09:30:00Z), in years 1 to 9999';
const auditQuery = z
  .object({
    since: z
      .union([z.iso.datetime({ offset: true }), z.iso.date()], SINCE_MESSAGE)
      // what PostgreSQL's timestamptz holds, once the offset is applied
      .refine((since) => {
        const year = new Date(since).getUTCFullYear();
        return year >= 1 && year <= 9999;
      }, SINCE_MESSAGE)
      .optional(),
    type: z
      .string()
      .max(100)
      .regex(/^[a-z][a-z_]*(\.[a-z][a-z_]*)*\.?$/u, 'a type is an event type (admin.user.deleted) or a prefix ending in "." (admin.)')
      .optional(),
    limit: pageLimit.default(DEFAULT_PAGE_SIZE),
    // the id of the last event of the previous page: newer events never shift the next page
    cursor: AUDIT_CURSOR.optional(),
  })
  .strict();

/** The key set as an audit object, for commands that change several keys at once. */
const KEY_SET = 'signing-keys';

/** The audit descriptor of a command on one client (its input names it by `id`), with an optional detail. */
function aboutClient<Input extends { readonly id: string }>(type: AdminEventType | ((input: Input) => AdminEventType), detail?: (input: Input, result: Output) => Record<string, unknown>): AdminAudit<Input> {
  return {
    type,
    object: (input) => input.id,
    about: (input, result) => ({ clientId: input.id, ...(detail === undefined ? {} : { detail: detail(input, result) }) }),
  };
}

/** The fields an update was given (its selector left out), by their names in the views. */
const changedFields = (input: Record<string, unknown>) =>
  Object.entries(input).flatMap(([field, value]) => (field === 'id' || field === 'username' || value === undefined ? [] : [wireName(field)]));

/**
 * The event type of an update: a change of `disabled` alone is a disabling or enabling, one of
 * `roles` alone (a user's) a roles change, as their own commands record them.
 */
function updateEvent(kind: 'client' | 'user', input: { readonly disabled?: boolean | undefined } & Record<string, unknown>): AdminEventType {
  const changed = changedFields(input).join();
  if (changed === 'disabled') return input.disabled === true ? `admin.${kind}.disabled` : `admin.${kind}.enabled`;
  if (kind === 'user' && changed === 'roles') return 'admin.user.roles_set';
  return `admin.${kind}.updated`;
}

/** A key command run on the context's key store (keys/commands.ts), with the same input schema. */
function keyCommand(name: KeyCommandName, audit?: AdminAudit<never>): AdminCommand<unknown> {
  const command = keyCommands[name] as KeyCommand<unknown>;
  return {
    input: command.input,
    run: async (context, input) => {
      const result = await command.run(context.keys(), input);
      if (audit !== undefined) await context.keysChanged?.();
      return result;
    },
    ...(audit === undefined ? {} : { audit: { ...(audit as AdminAudit<unknown>), ownTransaction: true } }),
  };
}

/** The current view of the client an input names (locked until the command's transaction ends): for `If-Match`. */
async function currentClient({ stores }: CommandContext, { id }: { readonly id: string }): Promise<Output> {
  await stores.clients.lock(id);
  return clientView(await knownClient(() => showClient(stores.clients, id)));
}

async function currentUser(context: CommandContext, selector: UserSelector): Promise<Output> {
  const username = await usernameOf(context, selector);
  return userView(await knownUser(() => showUser(context.stores.users, username)));
}

async function currentApiKey({ stores }: CommandContext, { id }: { readonly id: string }): Promise<Output> {
  const found = (await stores.apiKeys.lock(id)) ? await stores.apiKeys.find(id) : undefined;
  if (found === undefined) throw new AdminNotFoundError(`no API key with id ${id}`);
  return apiKeyView(found);
}

/** The key changes the CLI makes itself on the file store and then records (`keys.record-change`). */
export const RECORDED_KEY_CHANGES = ['keys.generate', 'keys.rotate', 'keys.retire'] as const;

/** The audit descriptors of the key changes of one key (or a rotation), wherever they are made. */
const KEY_CHANGE_AUDITS = {
  'keys.generate': {
    type: 'admin.key.generated',
    object: (_input, result) => String(result['kid']),
    about: (_input, result) => ({ detail: { state: result['state'] } }),
  } satisfies AdminAudit<never>,
  'keys.rotate': {
    type: 'admin.key.rotated',
    object: (_input, result) => String(result['current']),
    about: (input: { force: boolean }, result) => ({ detail: { current: result['current'], retired: result['retired'], next: result['next'], force: input.force } }),
  } satisfies AdminAudit<never>,
  'keys.retire': {
    type: 'admin.key.retired',
    object: (input: { kid: string }) => input.kid,
  } satisfies AdminAudit<never>,
} as const satisfies Record<(typeof RECORDED_KEY_CHANGES)[number], AdminAudit<never>>;

/**
 * A key change the CLI made itself on the file store (in its own KEYS_DIR, which need not be a
 * running issuer's), sent afterwards to be recorded as that command's event. Its input is the
 * command's, validated again by the command's own schema.
 */
const keyChangeRecord = z
  .object({ command: z.enum(RECORDED_KEY_CHANGES), input: z.unknown(), result: z.record(z.string(), z.unknown()) })
  .strict();
type KeyChangeRecord = z.infer<typeof keyChangeRecord>;

/** The descriptor of a recorded change's command, and the change's input validated by that command's own schema. */
function recordedKeyChange(record: KeyChangeRecord): { readonly audit: AdminAudit<unknown>; readonly input: unknown } {
  return { audit: KEY_CHANGE_AUDITS[record.command] as AdminAudit<unknown>, input: keyCommandInput(record.command, record.input) };
}

export const adminCommands = {
  'keys.list': keyCommand('keys.list'),
  'keys.show': keyCommand('keys.show'),
  'keys.generate': keyCommand('keys.generate', KEY_CHANGE_AUDITS['keys.generate']),
  'keys.rotate': keyCommand('keys.rotate', KEY_CHANGE_AUDITS['keys.rotate']),
  'keys.retire': keyCommand('keys.retire', KEY_CHANGE_AUDITS['keys.retire']),
  'keys.record-change': {
    input: keyChangeRecord,
    run: async (_context, record) => ({ recorded: record.command }),
    audit: {
      type: (record) => {
        const { audit, input } = recordedKeyChange(record);
        return typeof audit.type === 'string' ? audit.type : audit.type(input, record.result);
      },
      object: (record) => {
        const { audit, input } = recordedKeyChange(record);
        return audit.object(input, record.result);
      },
      about: (record) => {
        const { audit, input } = recordedKeyChange(record);
        return audit.about?.(input, record.result) ?? {};
      },
    },
  } satisfies AdminCommand<KeyChangeRecord>,
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
    input: clientPage,
    run: async ({ stores }, input) => {
      const { items, next_cursor } = await listed(input, () => listClients(stores.clients), (query) => pageClients(stores.clients, query), clientView);
      return { clients: items, next_cursor };
    },
  } satisfies AdminCommand<z.output<typeof clientPage>>,
  'clients.show': {
    input: clientById,
    run: async ({ stores }, { id }) => clientView(await knownClient(() => showClient(stores.clients, id))),
  } satisfies AdminCommand<z.infer<typeof clientById>>,
  'clients.update': {
    input: clientUpdateSchema,
    run: async ({ stores }, input) => clientView(await knownClient(() => updateClient(stores.clients, input))),
    current: currentClient,
    // what was asked for, and the client as it is now (no secret is ever in either); a change of `disabled` alone is a disabling or enabling
    audit: aboutClient(
      (input) => updateEvent('client', input),
      (input, result) => ({ changed: changedFields(input), client: result }),
    ),
  } satisfies AdminCommand<z.infer<typeof clientUpdateSchema>>,
  'clients.disable': {
    input: clientById,
    run: async ({ stores }, { id }) => clientView(await knownClient(() => setClientDisabled(stores.clients, id, true))),
    current: currentClient,
    audit: aboutClient('admin.client.disabled'),
  } satisfies AdminCommand<z.infer<typeof clientById>>,
  'clients.enable': {
    input: clientById,
    run: async ({ stores }, { id }) => clientView(await knownClient(() => setClientDisabled(stores.clients, id, false))),
    current: currentClient,
    audit: aboutClient('admin.client.enabled'),
  } satisfies AdminCommand<z.infer<typeof clientById>>,
  'clients.delete': {
    input: clientById,
    run: async ({ stores }, { id }) => ({ deleted: true, ...clientView(await knownClient(() => deleteClient(stores.clients, id))) }),
    current: currentClient,
    audit: aboutClient('admin.client.deleted'),
  } satisfies AdminCommand<z.infer<typeof clientById>>,
  'clients.rotate-secret': {
    input: clientSecretRotation,
    run: async ({ stores }, { id, graceSeconds }) => {
      const { client, clientSecret } = await knownClient(() => rotateClientSecret(stores.clients, id, graceSeconds));
      return { client_id: client.id, client_secret: clientSecret, client: clientView(client) };
    },
    current: currentClient,
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
    input: apiKeyPage,
    run: async ({ stores }, input) => {
      const { items, next_cursor } = await listed(input, () => stores.apiKeys.list(), (query) => stores.apiKeys.page(query), apiKeyView);
      return { api_keys: items, next_cursor };
    },
  } satisfies AdminCommand<z.output<typeof apiKeyPage>>,
  'api-keys.show': {
    input: byId,
    run: async ({ stores }, { id }) => {
      const found = await stores.apiKeys.find(id);
      if (found === undefined) throw new AdminNotFoundError(`no API key with id ${id}`);
      return apiKeyView(found);
    },
  } satisfies AdminCommand<z.infer<typeof byId>>,
  'api-keys.update': {
    input: apiKeyUpdateSchema,
    run: async ({ stores }, { id, resources }) => {
      const updated = await stores.apiKeys.setResources(id, resources);
      if (updated === undefined) throw new AdminNotFoundError(`no API key with id ${id}`);
      return apiKeyView(updated);
    },
    current: currentApiKey,
    audit: { type: 'admin.api_key.updated', object: resultId, about: (input) => ({ detail: { resources: input.resources } }) },
  } satisfies AdminCommand<z.infer<typeof apiKeyUpdateSchema>>,
  'api-keys.revoke': {
    input: byId,
    run: async ({ stores }, { id }) => {
      const revoked = await stores.apiKeys.revoke(id);
      if (revoked === undefined) throw new AdminNotFoundError(`no API key with id ${id}`);
      return apiKeyView(revoked);
    },
    current: currentApiKey,
    audit: { type: 'admin.api_key.revoked', object: resultId },
  } satisfies AdminCommand<z.infer<typeof byId>>,
  'api-keys.rotate': {
    input: byId,
    run: async ({ stores }, { id }) => {
      const found = await stores.apiKeys.find(id);
      if (found === undefined) throw new AdminNotFoundError(`no API key with id ${id}`);
      const rotated = found.revokedAt === null ? await rotateApiKey(stores.apiKeys, id) : undefined;
      if (rotated === undefined) throw new AdminConflictError(`API key ${id} is revoked: create a new one (api-keys create)`);
      return { id, key: rotated.key, api_key: apiKeyView(rotated.record) };
    },
    current: currentApiKey,
    // the id, never either value
    audit: { type: 'admin.api_key.rotated', object: resultId },
  } satisfies AdminCommand<z.infer<typeof byId>>,
  'users.create': {
    input: newUserSchema,
    prepare: ({ hasher }, input) => hasher.hash(input.password),
    run: async ({ stores }, input, passwordHash) => {
      try {
        const user = await insertUser(stores.users, input, passwordHash);
        return { id: user.id, username: user.username, user: userView(user) };
      } catch (error) {
        if (error instanceof UserConflictError) throw new AdminConflictError(error.message);
        throw error;
      }
    },
    audit: {
      type: 'admin.user.created',
      object: resultId,
      // never the password
      about: (input, result) => ({ ...aboutUser(input, result), detail: { roles: (result['user'] as Output)['roles'], email: input.email ?? null } }),
    },
  } satisfies AdminCommand<z.infer<typeof newUserSchema>, string>,
  'users.list': {
    input: userPage,
    run: async ({ stores }, input) => {
      const { items, next_cursor } = await listed(input, () => stores.users.list(), (query) => stores.users.page(query), userView);
      return { users: items, next_cursor };
    },
  } satisfies AdminCommand<z.output<typeof userPage>>,
  'users.set-roles': {
    input: userRoles,
    run: async (context, input) => {
      const username = await usernameOf(context, input);
      return userView(await knownUser(() => setUserRoles(context.stores.users, username, input.roles)));
    },
    current: currentUser,
    audit: { type: 'admin.user.roles_set', object: resultId, about: (input, result) => ({ ...aboutUser(input, result), detail: { roles: result['roles'] } }) },
  } satisfies AdminCommand<z.infer<typeof userRoles>>,
  'users.disable': {
    input: userDisabled,
    run: async (context, input) => {
      const username = await usernameOf(context, input);
      return userView(await knownUser(() => setUserDisabled(context.stores.users, username, input.disabled)));
    },
    current: currentUser,
    audit: { type: ({ disabled }) => (disabled ? 'admin.user.disabled' : 'admin.user.enabled'), object: resultId, about: aboutUser },
  } satisfies AdminCommand<z.infer<typeof userDisabled>>,
  // the admin API's PATCH: roles and the disabled state in one change
  'users.update': {
    input: userUpdate,
    run: async (context, input) => {
      const username = await usernameOf(context, input);
      const { roles, disabled } = input;
      // the schema asks for one of them at least
      let user = roles === undefined ? undefined : await knownUser(() => setUserRoles(context.stores.users, username, roles));
      if (disabled !== undefined) user = await knownUser(() => setUserDisabled(context.stores.users, username, disabled));
      return userView(user ?? (await knownUser(() => showUser(context.stores.users, username))));
    },
    current: currentUser,
    audit: {
      type: (input) => updateEvent('user', input),
      object: resultId,
      about: (input, result) => ({ ...aboutUser(input, result), detail: { changed: changedFields(input), roles: result['roles'], disabled: result['disabled'] } }),
    },
  } satisfies AdminCommand<z.infer<typeof userUpdate>>,
  'users.show': {
    input: userRef,
    run: async (context, input) => userView(await knownUser(async () => showUser(context.stores.users, await usernameOf(context, input)))),
  } satisfies AdminCommand<z.infer<typeof userRef>>,
  'users.set-password': {
    input: userPassword,
    prepare: ({ hasher }, input) => hasher.hash(input.password),
    // and every grant and session of the user is revoked (domain/users.ts setUserPassword)
    run: async (context, input, passwordHash) => {
      const username = await usernameOf(context, input);
      return { ...userView(await knownUser(() => replacePassword(context.stores.users, username, passwordHash))), grants_revoked: true };
    },
    current: currentUser,
    audit: { type: 'admin.user.password_set', object: resultId, about: aboutUser },
  } satisfies AdminCommand<z.infer<typeof userPassword>, string>,
  'users.delete': {
    input: userRef,
    run: async (context, input) => {
      const username = await usernameOf(context, input);
      const user = await knownUser(() => deleteUser(context.stores.users, username));
      return { id: user.id, username: user.username, deleted: true, grants_revoked: true };
    },
    current: currentUser,
    audit: { type: 'admin.user.deleted', object: resultId, about: aboutUser },
  } satisfies AdminCommand<z.infer<typeof userRef>>,
  'doctor.facts': {
    input: empty,
    run: async (context) => ({ ...(await doctorFacts(context)) }),
  } satisfies AdminCommand<z.infer<typeof empty>>,
  'audit.show': {
    input: z.object({ id: AUDIT_CURSOR }).strict(),
    run: async ({ stores }, { id }) => {
      const event = await stores.audit.find(id);
      if (event === undefined) throw new AdminNotFoundError(`no audit event with id ${id}`);
      return auditEventView(event);
    },
  } satisfies AdminCommand<{ id: string }>,
  'audit.list': {
    input: auditQuery,
    run: async ({ stores }, { since, type, limit, cursor }) => {
      // one more than asked: whether there is an older page
      const events = await stores.audit.list({ since: since === undefined ? undefined : new Date(since), type, before: cursor, limit: limit + 1 });
      const page = events.slice(0, limit);
      return { events: page.map(auditEventView), next_cursor: events.length > limit ? (page.at(-1)?.id ?? null) : null };
    },
  } satisfies AdminCommand<z.infer<typeof auditQuery>>,
} as const;

export type AdminCommandName = keyof typeof adminCommands;

/** Whether command `name` changes something (and so records an admin event). */
export function isAdminChange(name: AdminCommandName): boolean {
  return (adminCommands[name] as AdminCommand<unknown, unknown>).audit !== undefined;
}

export function isAdminCommandName(name: string): name is AdminCommandName {
  return Object.hasOwn(adminCommands, name);
}

/** Thrown for input that fails a command's schema: the CLI exits 2 on it. */
export class AdminInputError extends Error {
  override name = 'AdminInputError';
  constructor(
    message: string,
    /** What the schema found, field by field (the admin API names the fields in its answer); empty when not from a schema. */
    readonly issues: readonly z.core.$ZodIssue[] = [],
  ) {
    super(message);
  }
}

/** The input names an object that does not exist (the admin API's 404; bad input for the CLI). */
export class AdminNotFoundError extends AdminInputError {
  override name = 'AdminNotFoundError';
}

/** The input clashes with what exists, such as a username that is taken (the admin API's 409). */
export class AdminConflictError extends AdminInputError {
  override name = 'AdminConflictError';
}

/** The object changed since the caller read it (`If-Match`, RFC 9110 §13.1.1): nothing was written. */
export class AdminPreconditionFailed extends Error {
  override name = 'AdminPreconditionFailed';
  constructor(
    /** The object as it is now. */
    readonly current: Output,
  ) {
    super('the object has changed since it was read (If-Match): read it again and reapply the change');
  }
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

/** How a caller conditions a change on the object's current state. */
export interface AdminRunOptions {
  /**
   * Whether the change may go ahead, given the object's current view (the `show` command's
   * output), read with its row locked in the change's own transaction so nothing changes it in
   * between. False: {@link AdminPreconditionFailed}, nothing written. Only for commands with a
   * `current` (a change to one object).
   */
  readonly precondition?: (current: Output) => boolean;
}

/**
 * Validates `input` for `name` and runs the command. A command that changes something (one
 * with an `audit`) runs in a transaction that also records its admin event, so that no change
 * goes unrecorded and a failed one records nothing; one that writes through the key store
 * records it right after.
 */
export async function runAdminCommand(context: AdminContext, name: AdminCommandName, input: unknown, options: AdminRunOptions = {}): Promise<Output> {
  const command = adminCommands[name] as AdminCommand<unknown, unknown>;
  const parsed = command.input.safeParse(input);
  if (!parsed.success) throw new AdminInputError(describeInputError(parsed.error), parsed.error.issues);
  const prepared = await command.prepare?.(context, parsed.data);
  const { audit, current } = command;
  const { precondition } = options;
  if (precondition !== undefined && (audit === undefined || current === undefined || audit.ownTransaction === true)) {
    throw new TypeError(`${name} cannot be run with a precondition`);
  }
  if (audit === undefined) return command.run({ ...context, stores: createStores(context.db) }, parsed.data, prepared);
  if (audit.ownTransaction === true) {
    const result = await command.run({ ...context, stores: createStores(context.db) }, parsed.data, prepared);
    const event = adminEvent(audit, context.actor, parsed.data, result);
    await createAuditStore(context.db).appendAdmin(event);
    context.recorded?.(event);
    return result;
  }
  const { result, event } = await context.db.transaction(async (trx) => {
    const commandContext = { ...context, db: trx, stores: createStores(trx) };
    if (precondition !== undefined && current !== undefined) {
      const now = await current(commandContext, parsed.data);
      if (!precondition(now)) throw new AdminPreconditionFailed(now);
    }
    const changed = await command.run(commandContext, parsed.data, prepared);
    const recorded = adminEvent(audit, context.actor, parsed.data, changed);
    await createAuditStore(trx).appendAdmin(recorded);
    return { result: changed, event: recorded };
  });
  if (event.type.startsWith('admin.client.')) context.clientChanged?.(event.object);
  context.recorded?.(event);
  return result;
}
