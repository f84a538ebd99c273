import { randomBytes } from 'node:crypto';

import type { AdminCommandName } from '../admin/commands.js';
import { TOKEN_EXCHANGE } from '../domain/clients.js';
import { splitScope } from '../domain/validation.js';

/**
 * The demo credentials of `npm run stack`, made repeatable: a run finds the demo clients, user
 * and API key an earlier run left in the same data and reuses them, their settings brought to
 * what the stack defines now and their secrets rotated, instead of registering new ones that
 * would pile up for good. It only runs admin commands, so that it can be tested against any
 * database without the stack's fixed-port processes.
 */

/** Runs one admin command where the data lives (`runDatabaseCommand` with the stack's configuration). */
export type CommandRunner = (name: AdminCommandName, input: unknown) => Promise<Record<string, unknown>>;

/** Where the stack's services answer: the demo clients name them as resources. */
export interface StackAddresses {
  /** The issuer identifier; its admin API is the resource `${issuer}/admin`. */
  readonly issuer: string;
  readonly orders: string;
  readonly reports: string;
}

export interface DemoCredentials {
  readonly id: string;
  readonly secret: string;
}

/** What a run hands out: every secret, key and password in it is new, whatever was reused. */
export interface DemoSetup {
  readonly machine: DemoCredentials;
  readonly ordersApi: DemoCredentials;
  readonly reportsApi: DemoCredentials;
  readonly web: DemoCredentials;
  readonly admin: DemoCredentials;
  readonly apiKey: { readonly id: string; readonly key: string };
  readonly user: { readonly username: string; readonly password: string };
}

export const DEMO_USERNAME = 'demo';
export const DEMO_KEY_NAME = 'demo-key';
export const DEMO_REDIRECT_URI = 'http://127.0.0.1:8080/callback';
const DEMO_USER_ROLES = ['admin'];

/**
 * A demo client as the stack defines it, every setting given (clients.create's input), so
 * that a reused client can be compared with all of them. Demo clients are all confidential.
 */
interface DemoClient {
  readonly name: string;
  readonly grants: readonly string[];
  readonly scopes: readonly string[];
  readonly roles: readonly string[];
  readonly redirectUris: readonly string[];
  readonly resources: readonly string[];
  readonly firstParty: boolean;
  readonly accessTokenTtl: number | null;
  /** Always null: the demo clients authenticate with a secret (a client switched to private_key_jwt is switched back). */
  readonly auth: null;
  readonly requireDpop: boolean;
  readonly mayExchangeFor: readonly string[];
}

/** A client as `clients.list` shows it (admin/commands.ts), the fields read here. */
interface ClientView {
  readonly client_id: string;
  readonly name: string;
  readonly grants: readonly string[];
  readonly scope: string;
  readonly roles: readonly string[];
  readonly redirect_uris: readonly string[];
  readonly resources: readonly string[];
  readonly public: boolean;
  readonly first_party: boolean;
  readonly access_token_ttl: number | null;
  readonly auth: string | null;
  readonly require_dpop: boolean;
  readonly may_exchange_for: readonly string[];
  readonly disabled: boolean;
}

interface UserView {
  readonly username: string;
  readonly roles: readonly string[];
  readonly disabled: boolean;
}

interface ApiKeyView {
  readonly id: string;
  readonly name: string;
  readonly scope: string;
  readonly roles: readonly string[];
  readonly resources: readonly string[];
  readonly expires_at: string | null;
  readonly revoked_at: string | null;
}

function demoClient(settings: Pick<DemoClient, 'name'> & Partial<DemoClient>): DemoClient {
  return { grants: [], scopes: [], roles: [], redirectUris: [], resources: [], firstParty: false, accessTokenTtl: null, auth: null, requireDpop: false, mayExchangeFor: [], ...settings };
}

/** The stack's clients, by the role each plays in it. */
function demoClients({ issuer, orders, reports }: StackAddresses): Record<keyof Omit<DemoSetup, 'apiKey' | 'user'>, DemoClient> {
  return {
    machine: demoClient({
      name: 'demo-machine',
      grants: ['client_credentials'],
      scopes: ['orders:read', 'orders:write', 'reports:read'],
      roles: ['admin'],
      resources: [orders, reports],
    }),
    // each service's own client declares the scopes of its audience; reports-api's only introspects,
    // orders-api's also exchanges the tokens it is sent for reports-api tokens (GET /orders/summary)
    ordersApi: demoClient({ name: 'orders-api', grants: [TOKEN_EXCHANGE], scopes: ['orders:read', 'orders:write'], resources: [orders], mayExchangeFor: [reports] }),
    reportsApi: demoClient({ name: 'reports-api', scopes: ['reports:read'], resources: [reports] }),
    web: demoClient({
      name: 'demo-web',
      grants: ['authorization_code', 'refresh_token', 'password'],
      // reports:read rides in its tokens for orders-api, which may pass it on to reports-api
      scopes: ['openid', 'profile', 'email', 'orders:read', 'orders:write', 'reports:read'],
      redirectUris: [DEMO_REDIRECT_URI],
      resources: [orders],
      firstParty: true,
    }),
    admin: demoClient({ name: 'demo-admin', grants: ['client_credentials'], scopes: ['sigil:admin'], resources: [`${issuer}/admin`] }),
  };
}

/**
 * The client of `name` to reuse: earlier versions of the stack registered one per run, so
 * there may be several; the oldest enabled one, else the oldest. A public client has no
 * secret to hand out, so it is none of the stack's.
 */
function clientToReuse(clients: readonly ClientView[], name: string): ClientView | undefined {
  const named = clients.filter((client) => client.name === name && !client.public);
  return named.find((client) => !client.disabled) ?? named[0];
}

/** The settings in which `found` differs from `wanted`, as `clients.update` takes them: none when it matches. */
function settingsToChange(wanted: DemoClient, found: ClientView): Partial<DemoClient> {
  const current: Omit<DemoClient, 'auth'> & { readonly auth: string | null } = {
    name: found.name,
    grants: found.grants,
    scopes: splitScope(found.scope),
    roles: found.roles,
    redirectUris: found.redirect_uris,
    resources: found.resources,
    firstParty: found.first_party,
    accessTokenTtl: found.access_token_ttl,
    auth: found.auth,
    requireDpop: found.require_dpop,
    mayExchangeFor: found.may_exchange_for,
  };
  // lists in order: a client's first resource is its default audience
  const differs = (field: keyof DemoClient) => JSON.stringify(wanted[field]) !== JSON.stringify(current[field]);
  return Object.fromEntries((Object.keys(wanted) as (keyof DemoClient)[]).filter(differs).map((field) => [field, wanted[field]]));
}

const credentialsOf = (result: Record<string, unknown>): DemoCredentials => ({ id: String(result['client_id']), secret: String(result['client_secret']) });

/**
 * Reuses the client `wanted` names, or registers it. A reused client is updated only where it
 * differs (each update is an audit event), enabled when it was disabled, and given a new
 * secret with no grace: the one an earlier run printed stops working at once.
 */
async function provisionClient(run: CommandRunner, clients: readonly ClientView[], wanted: DemoClient): Promise<DemoCredentials> {
  const found = clientToReuse(clients, wanted.name);
  if (found === undefined) return credentialsOf(await run('clients.create', wanted));
  const changes = settingsToChange(wanted, found);
  if (Object.keys(changes).length > 0) await run('clients.update', { id: found.client_id, ...changes });
  if (found.disabled) await run('clients.enable', { id: found.client_id });
  return credentialsOf(await run('clients.rotate-secret', { id: found.client_id, graceSeconds: 0 }));
}

/**
 * The demo user with a new random password (which also ends its earlier grants and sessions),
 * its roles and enabled state restored when they were changed; created when there is none.
 */
async function provisionUser(run: CommandRunner): Promise<DemoSetup['user']> {
  const password = randomBytes(12).toString('base64url');
  const { users } = (await run('users.list', {})) as { users: UserView[] };
  // usernames are unique in any case
  const found = users.find((user) => user.username.toLowerCase() === DEMO_USERNAME);
  if (found === undefined) {
    await run('users.create', { username: DEMO_USERNAME, password, roles: DEMO_USER_ROLES });
    return { username: DEMO_USERNAME, password };
  }
  const { username } = found;
  if (JSON.stringify(found.roles) !== JSON.stringify(DEMO_USER_ROLES)) await run('users.set-roles', { username, roles: DEMO_USER_ROLES });
  if (found.disabled) await run('users.disable', { username, disabled: false });
  await run('users.set-password', { username, password });
  return { username, password };
}

/** A demo key an earlier run made that can be reused: an update can give it its services back, but not its scopes, roles or expiry. */
const reusableKey = (apiKey: ApiKeyView) => apiKey.name === DEMO_KEY_NAME && apiKey.revoked_at === null && apiKey.scope === 'orders:read' && apiKey.roles.length === 0 && apiKey.expires_at === null;

/**
 * The demo API key: the oldest reusable one, given a new value (and its service back, if it
 * was changed), or a new one when there is none. Any other demo key in force is revoked, so
 * that only the key printed works.
 */
async function provisionApiKey(run: CommandRunner, { orders }: StackAddresses): Promise<DemoSetup['apiKey']> {
  const { api_keys: apiKeys } = (await run('api-keys.list', {})) as { api_keys: ApiKeyView[] };
  const reused = apiKeys.find(reusableKey);
  for (const earlier of apiKeys.filter((apiKey) => apiKey.name === DEMO_KEY_NAME && apiKey.revoked_at === null && apiKey !== reused)) {
    await run('api-keys.revoke', { id: earlier.id });
  }
  if (reused === undefined) {
    const created = await run('api-keys.create', { name: DEMO_KEY_NAME, resources: [orders], scopes: ['orders:read'] });
    return { id: String(created['id']), key: String(created['key']) };
  }
  if (JSON.stringify(reused.resources) !== JSON.stringify([orders])) await run('api-keys.update', { id: reused.id, resources: [orders] });
  const rotated = await run('api-keys.rotate', { id: reused.id });
  return { id: reused.id, key: String(rotated['key']) };
}

/** Registers, or reuses, everything the stack hands out, one admin command at a time. */
export async function provisionDemo(run: CommandRunner, addresses: StackAddresses): Promise<DemoSetup> {
  const wanted = demoClients(addresses);
  const { clients } = (await run('clients.list', {})) as { clients: ClientView[] };
  const provision = (client: DemoClient) => provisionClient(run, clients, client);
  return {
    machine: await provision(wanted.machine),
    ordersApi: await provision(wanted.ordersApi),
    reportsApi: await provision(wanted.reportsApi),
    web: await provision(wanted.web),
    admin: await provision(wanted.admin),
    apiKey: await provisionApiKey(run, addresses),
    user: await provisionUser(run),
  };
}
