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
import type { DataFacts } from '../domain/doctor.js';
import type { PasswordHasher } from '../domain/passwords.js';
import {
  createUser,
  newUserSchema,
  setUserDisabled,
  setUserRoles,
  UnknownUserError,
  UserConflictError,
  usernameSchema,
  type UserRecord,
} from '../domain/users.js';
import { roleList } from '../domain/validation.js';
import { keyCommands, type KeyCommand, type KeyCommandContext, type KeyCommandName } from '../keys/commands.js';
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
}

/** What a command runs with: the stores over the context's database. */
interface CommandContext extends AdminContext {
  readonly stores: Stores;
}

export interface AdminCommand<Input> {
  readonly input: z.ZodType<Input>;
  run(context: CommandContext, input: Input): Promise<Record<string, unknown>>;
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

/** A key command run on the context's key store (keys/commands.ts), with the same input schema. */
function keyCommand(name: KeyCommandName): AdminCommand<unknown> {
  const command = keyCommands[name] as KeyCommand<unknown>;
  return { input: command.input, run: (context, input) => command.run(context.keys(), input) };
}

export const adminCommands = {
  'keys.list': keyCommand('keys.list'),
  'keys.generate': keyCommand('keys.generate'),
  'keys.rotate': keyCommand('keys.rotate'),
  'keys.retire': keyCommand('keys.retire'),
  'keys.import': keyCommand('keys.import'),
  'keys.reencrypt': keyCommand('keys.reencrypt'),
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
  } satisfies AdminCommand<z.infer<typeof clientUpdateSchema>>,
  'clients.disable': {
    input: clientById,
    run: async ({ stores }, { id }) => clientView(await knownClient(() => setClientDisabled(stores.clients, id, true))),
  } satisfies AdminCommand<z.infer<typeof clientById>>,
  'clients.enable': {
    input: clientById,
    run: async ({ stores }, { id }) => clientView(await knownClient(() => setClientDisabled(stores.clients, id, false))),
  } satisfies AdminCommand<z.infer<typeof clientById>>,
  'clients.delete': {
    input: clientById,
    run: async ({ stores }, { id }) => ({ deleted: true, ...clientView(await knownClient(() => deleteClient(stores.clients, id))) }),
  } satisfies AdminCommand<z.infer<typeof clientById>>,
  'clients.rotate-secret': {
    input: clientSecretRotation,
    run: async ({ stores }, { id, graceSeconds }) => {
      const { client, clientSecret } = await knownClient(() => rotateClientSecret(stores.clients, id, graceSeconds));
      return { client_id: client.id, client_secret: clientSecret, client: clientView(client) };
    },
  } satisfies AdminCommand<z.infer<typeof clientSecretRotation>>,
  'api-keys.create': {
    input: newApiKeySchema,
    run: async ({ stores }, input) => {
      const { record, key } = await createApiKey(stores.apiKeys, input);
      return { id: record.id, key, api_key: apiKeyView(record) };
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
  } satisfies AdminCommand<z.infer<typeof apiKeyUpdateSchema>>,
  'api-keys.revoke': {
    input: byId,
    run: async ({ stores }, { id }) => {
      const revoked = await stores.apiKeys.revoke(id);
      if (revoked === undefined) throw new AdminInputError(`no API key with id ${id}`);
      return apiKeyView(revoked);
    },
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
  } satisfies AdminCommand<z.infer<typeof newUserSchema>>,
  'users.list': {
    input: empty,
    run: async ({ stores }) => ({ users: (await stores.users.list()).map(userView) }),
  } satisfies AdminCommand<z.infer<typeof empty>>,
  'users.set-roles': {
    input: userRoles,
    run: async ({ stores }, { username, roles }) => userView(await knownUser(() => setUserRoles(stores.users, username, roles))),
  } satisfies AdminCommand<z.infer<typeof userRoles>>,
  'users.disable': {
    input: userDisabled,
    run: async ({ stores }, { username, disabled }) => userView(await knownUser(() => setUserDisabled(stores.users, username, disabled))),
  } satisfies AdminCommand<z.infer<typeof userDisabled>>,
  'doctor.facts': {
    input: empty,
    run: async (context) => ({ ...(await doctorFacts(context)) }),
  } satisfies AdminCommand<z.infer<typeof empty>>,
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

/** Validates `input` for `name` and runs the command. */
export async function runAdminCommand(context: AdminContext, name: AdminCommandName, input: unknown): Promise<Record<string, unknown>> {
  const command = adminCommands[name] as AdminCommand<unknown>;
  const parsed = command.input.safeParse(input);
  if (!parsed.success) throw new AdminInputError(describeInputError(parsed.error));
  return command.run({ ...context, stores: createStores(context.db) }, parsed.data);
}
