import { beforeAll, describe, expect, it } from '@jest/globals';

import { runDatabaseCommand } from '../../src/cli/run-command.js';
import { DEMO_USERNAME, provisionDemo, type CommandRunner, type DemoSetup, type StackAddresses } from '../../src/stack/provision.js';
import { backends } from '../support/backends.js';
import { issuerSuite } from '../support/issuer.js';
import { postForm, type Credentials } from '../support/oauth.js';

const ORDERS = 'http://localhost:4001';
const REPORTS = 'http://localhost:4002';

/** The parts of the admin commands' views this suite reads. */
interface ClientView {
  client_id: string;
  name: string;
  scope: string;
  roles: string[];
  disabled: boolean;
}
interface UserView {
  id: string;
  username: string;
  roles: string[];
  disabled: boolean;
}
interface ApiKeyView {
  id: string;
  name: string;
  resources: string[];
  revoked_at: string | null;
}
interface AuditView {
  type: string;
  client_id: string | null;
  detail: Record<string, unknown> | null;
}

/** The demo clients of a run, by the role each plays. */
const clientsOf = ({ machine, ordersApi, reportsApi, web, admin }: DemoSetup) => ({ machine, ordersApi, reportsApi, web, admin });

describe.each(backends)('npm run stack provisioning ($name)', (backend) => {
  // as the stack does: the issuer first, then the commands through its admin socket (embedded) or on the database
  const suite = issuerSuite(backend);
  const run: CommandRunner = (name, input) => runDatabaseCommand(suite.issuer.config, name, input);
  const addresses = (): StackAddresses => ({ issuer: suite.issuer.issuer, orders: ORDERS, reports: REPORTS });
  const provision = () => provisionDemo(run, addresses());

  const clients = async () => ((await run('clients.list', {})) as { clients: ClientView[] }).clients;
  const users = async () => ((await run('users.list', {})) as { users: UserView[] }).users;
  const apiKeys = async () => ((await run('api-keys.list', {})) as { api_keys: ApiKeyView[] }).api_keys;
  const events = async (type: string) => ((await run('audit.list', { type, limit: 1000 })) as { events: AuditView[] }).events;
  /** What the runs leave behind: every client and user, and the API keys still in force. */
  const inventory = async () => ({
    clients: (await clients()).map((client) => client.client_id),
    users: (await users()).map((user) => user.id),
    unrevokedKeys: (await apiKeys()).filter((apiKey) => apiKey.revoked_at === null).map((apiKey) => apiKey.id),
  });

  const machineToken = (client: Credentials, form: Record<string, string> = {}) => postForm(suite.issuer.url, { grant_type: 'client_credentials', ...form }, client);
  const signIn = (web: Credentials, password: string) => postForm(suite.issuer.url, { grant_type: 'password', username: DEMO_USERNAME, password }, web);
  const introspect = async (by: Credentials, token: string) => (await (await postForm(suite.issuer.url, { token }, by, { path: '/token/introspection' })).json()) as { active: boolean };

  let first: DemoSetup;
  let afterFirst: Awaited<ReturnType<typeof inventory>>;
  let second: DemoSetup;
  beforeAll(async () => {
    first = await provision();
    afterFirst = await inventory();
    second = await provision();
  });

  it('when it runs again, reuses every demo client, the user and the API key, touching no setting', async () => {
    expect(afterFirst).toEqual({ clients: Object.values(clientsOf(first)).map((client) => client.id), users: [expect.any(String)], unrevokedKeys: [first.apiKey.id] });
    expect(first.user.username).toBe('demo');

    expect(await inventory()).toEqual(afterFirst);
    // the same key with a new value: no row is added
    expect(second.apiKey.id).toBe(first.apiKey.id);
    expect((await apiKeys()).length).toBe(1);
    for (const [role, client] of Object.entries(clientsOf(second))) {
      const earlier = clientsOf(first)[role as keyof ReturnType<typeof clientsOf>];
      expect({ role, id: client.id }).toEqual({ role, id: earlier.id });
      expect(client.secret).not.toBe(earlier.secret);
    }
    expect(second.user).toEqual({ username: 'demo', password: expect.any(String) });
    expect(second.user.password).not.toBe(first.user.password);
    expect(second.apiKey.key).not.toBe(first.apiKey.key);

    // nothing had drifted: the reuse is one rotation per client in the trail, and no other change
    expect(await events('admin.client.updated')).toEqual([]);
    expect(await events('admin.client.enabled')).toEqual([]);
    expect((await events('admin.client.secret_rotated')).map((event) => event.detail)).toEqual(Array(5).fill({ grace_seconds: 0 }));
    expect((await events('admin.user.')).map((event) => event.type).sort()).toEqual(['admin.user.created', 'admin.user.password_set']);
    expect((await events('admin.api_key.')).map((event) => event.type).sort()).toEqual(['admin.api_key.created', 'admin.api_key.rotated']);
  });

  it('when the second run is done, only its secrets, password and API key work at the issuer', async () => {
    const refused = await machineToken(first.machine);
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as { error: string }).error).toBe('invalid_client');
    expect((await machineToken(second.machine)).status).toBe(200);

    // the token the printed admin example asks for
    const adminForm = { resource: `${suite.issuer.issuer}/admin` };
    expect((await machineToken(first.admin, adminForm)).status).toBe(401);
    const admin = await machineToken(second.admin, adminForm);
    expect(admin.status).toBe(200);
    expect(await admin.json()).toMatchObject({ scope: 'sigil:admin' });

    expect(await introspect(second.ordersApi, first.apiKey.key)).toEqual({ active: false });
    expect(await introspect(second.ordersApi, second.apiKey.key)).toMatchObject({ active: true, name: 'demo-key', scope: 'orders:read', aud: [ORDERS] });

    expect((await signIn(second.web, first.user.password)).status).toBe(400);
    expect((await signIn(second.web, second.user.password)).status).toBe(200);
  });

  it('when an earlier run\'s clients were changed, disabled or registered twice, reuses the oldest enabled one (else the oldest, enabled again) as the stack defines it', async () => {
    const { machine, ordersApi, reportsApi, web } = second;
    await run('clients.update', { id: machine.id, scopes: ['orders:read'], roles: [] });
    await run('clients.disable', { id: machine.id });
    // a web app registered twice: the older is the one reused
    const newerWeb = await run('clients.create', { name: 'demo-web', grants: ['client_credentials'], resources: [ORDERS] });
    // an older one disabled, a newer one enabled: the enabled one
    const newerReports = await run('clients.create', { name: 'reports-api', scopes: ['reports:read'], resources: [REPORTS] });
    await run('clients.disable', { id: reportsApi.id });
    // both disabled: the older, enabled again
    const newerOrders = await run('clients.create', { name: 'orders-api', resources: [ORDERS] });
    await run('clients.disable', { id: ordersApi.id });
    await run('clients.disable', { id: String(newerOrders['client_id']) });
    await run('users.set-roles', { username: DEMO_USERNAME, roles: ['reader'] });
    await run('users.disable', { username: DEMO_USERNAME, disabled: true });
    // the key given another service: given its own back
    await run('api-keys.update', { id: second.apiKey.id, resources: [REPORTS] });
    const before = await inventory();
    const updatesBefore = (await events('admin.client.updated')).length;

    const third = await provision();
    expect(await inventory()).toEqual(before);
    expect(third.apiKey.id).toBe(second.apiKey.id);
    expect((await apiKeys()).find((apiKey) => apiKey.id === third.apiKey.id)?.resources).toEqual([ORDERS]);
    expect(third.machine.id).toBe(machine.id);
    expect(third.web.id).toBe(web.id);
    expect(third.reportsApi.id).toBe(String(newerReports['client_id']));
    expect(third.ordersApi.id).toBe(ordersApi.id);

    const byId = new Map((await clients()).map((client) => [client.client_id, client]));
    expect(byId.get(machine.id)).toMatchObject({ disabled: false, scope: 'orders:read orders:write reports:read', roles: ['admin'] });
    expect(byId.get(ordersApi.id)).toMatchObject({ disabled: false });
    // what is not reused is left as it was
    expect(byId.get(String(newerOrders['client_id']))).toMatchObject({ disabled: true });
    expect(byId.get(String(newerWeb['client_id']))).toMatchObject({ disabled: false, scope: '' });
    expect(byId.get(reportsApi.id)).toMatchObject({ disabled: true });
    // one update, of the one client that had drifted, naming what it changed
    const updates = await events('admin.client.updated');
    // newest first
    expect(updates.slice(0, updates.length - updatesBefore).map((event) => [event.client_id, event.detail?.['changed']])).toEqual([[machine.id, ['scope', 'roles']]]);
    expect((await users()).find((user) => user.username === DEMO_USERNAME)).toMatchObject({ roles: ['admin'], disabled: false });

    expect((await machineToken(third.machine)).status).toBe(200);
    expect((await signIn(third.web, third.user.password)).status).toBe(200);
  });
});
