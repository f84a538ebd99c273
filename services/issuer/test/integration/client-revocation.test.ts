import { beforeAll, describe, expect, it } from '@jest/globals';

import { runAdminCommand } from '../../src/admin/commands.js';
import { PasswordHasher } from '../../src/domain/passwords.js';
import { ACCESS_TOKEN_TTL_BOUND } from '../../src/domain/revocations.js';
import { FileKeyStore } from '../../src/keys/file-store.js';
import { backends } from '../support/backends.js';
import { sigilJson } from '../support/cli.js';
import { basicAuth } from '../support/http.js';
import { issuerSuite, testEnv } from '../support/issuer.js';
import { claimsOf, postForm, type Credentials } from '../support/oauth.js';

const ORDERS = 'http://localhost:4001';
const REPORTS = 'http://localhost:4002';

interface Created {
  client_id: string;
  client_secret: string;
}

/** A client revocation as the feed lists it. */
interface ClientEntry {
  client_id: string;
  revoked_at: number;
  expires_at: number;
}

interface Feed {
  revocations: Record<string, unknown>[];
  next_cursor: string;
  has_more: boolean;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(backends)('disabling or deleting a client revokes its access tokens ($name)', (backend) => {
  const suite = issuerSuite(backend);
  let env: Record<string, string>;
  let ordersService: Credentials;
  let reportsService: Credentials;

  const create = async (args: string[]): Promise<Credentials> => {
    const created = await sigilJson<Created>(['clients', 'create', ...args], env);
    return { id: created.client_id, secret: created.client_secret };
  };
  const machine = (name: string) => create(['--name', name, '--grant', 'client_credentials', '--scope', 'orders:read', '--resource', ORDERS]);
  const tokenResponse = (client: Credentials) => postForm(suite.issuer.url, { grant_type: 'client_credentials' }, client);
  const token = async (client: Credentials): Promise<string> => {
    const response = await tokenResponse(client);
    expect(response.status).toBe(200);
    return ((await response.json()) as { access_token: string }).access_token;
  };
  /** Whether introspection by the orders service (registered for the token's audience) says the token is active. */
  const active = async (jwt: string): Promise<boolean> => {
    const response = await postForm(suite.issuer.url, { token: jwt }, ordersService, { path: '/token/introspection' });
    expect(response.status).toBe(200);
    return ((await response.json()) as { active: boolean }).active;
  };
  const readFeed = async (service: Credentials, since?: string): Promise<Feed> => {
    const query = since === undefined ? '' : `?since=${encodeURIComponent(since)}`;
    const response = await fetch(`${suite.issuer.url}/token/revocations${query}`, { headers: { authorization: basicAuth(service.id, service.secret) } });
    expect(response.status).toBe(200);
    return (await response.json()) as Feed;
  };
  /** The feed's end for `service` now: entries listed after it were recorded after this call. */
  const feedEnd = async (service: Credentials): Promise<string> => {
    let page = await readFeed(service);
    while (page.has_more) page = await readFeed(service, page.next_cursor);
    return page.next_cursor;
  };
  /**
   * The client entries `service` is told of after `cursor` (from the start without one), once
   * there are at least `atLeast` (of client `of`, when given), waiting up to 10 s: the feed lists
   * an entry once no transaction that began before it can still commit (storage/revocations.ts),
   * which other suites' transactions on a shared PostgreSQL cluster delay by a moment.
   */
  const clientEntries = async (service: Credentials, cursor?: string, { atLeast = 1, of }: { atLeast?: number; of?: string } = {}): Promise<ClientEntry[]> => {
    const listed = async () => (await readFeed(service, cursor)).revocations.filter((entry): entry is Record<string, unknown> & ClientEntry => 'client_id' in entry);
    let entries = await listed();
    for (const deadline = Date.now() + 10_000; entries.filter((entry) => of === undefined || entry.client_id === of).length < atLeast && Date.now() < deadline; entries = await listed()) {
      await sleep(100);
    }
    return entries;
  };
  /** Waits until the clock has left the whole second `seconds`: a token issued then has a later `iat`. */
  const pastSecond = async (seconds: number) => sleep(Math.max(0, (seconds + 1) * 1000 - Date.now()) + 20);

  beforeAll(async () => {
    env = testEnv(suite.database);
    ordersService = await create(['--name', 'orders-api', '--resource', ORDERS]);
    reportsService = await create(['--name', 'reports-api', '--resource', REPORTS]);
  });

  it('when a client is disabled, its client credentials token introspects inactive and the feed tells every resource service; enabled again, the old token stays inactive and a new one is active', async () => {
    const client = await machine('leaky');
    const bystander = await machine('bystander');
    const old = await token(client);
    const kept = await token(bystander);
    expect(await active(old)).toBe(true);
    const [ordersCursor, reportsCursor] = [await feedEnd(ordersService), await feedEnd(reportsService)];

    expect(await sigilJson(['clients', 'disable', client.id], env)).toMatchObject({ disabled: true });
    expect(await active(old)).toBe(false);
    // only that client's tokens
    expect(await active(kept)).toBe(true);
    const entries = await clientEntries(ordersService, ordersCursor);
    expect(entries).toEqual([{ client_id: client.id, revoked_at: expect.any(Number), expires_at: expect.any(Number) }]);
    const [entry] = entries as [ClientEntry];
    expect(entry.revoked_at).toBeGreaterThanOrEqual(claimsOf(old)['iat'] as number);
    expect(entry.expires_at - entry.revoked_at).toBeGreaterThanOrEqual(ACCESS_TOKEN_TTL_BOUND);
    expect(entry.expires_at - entry.revoked_at).toBeLessThanOrEqual(ACCESS_TOKEN_TTL_BOUND + 1);
    // every service is told: the client may hold tokens for resources it is no longer registered for
    expect(await clientEntries(reportsService, reportsCursor)).toEqual(entries);
    expect(await suite.issuer.db('revocations').where({ kind: 'client', value: client.id }).select('audiences')).toEqual([{ audiences: null }]);

    expect(await sigilJson(['clients', 'enable', client.id], env)).toMatchObject({ disabled: false });
    expect(await active(old)).toBe(false);
    // a token issued once the revocation's moment has passed works
    await pastSecond(entry.revoked_at);
    const fresh = await token(client);
    expect(claimsOf(fresh)['iat']).toBeGreaterThan(entry.revoked_at);
    expect(await active(fresh)).toBe(true);
    expect(await active(old)).toBe(false);
  });

  it('when a client is disabled a second time, a newer moment is recorded: tokens issued between the two are refused too', async () => {
    const client = await machine('twice');
    const cursor = await feedEnd(ordersService);
    await sigilJson(['clients', 'disable', client.id], env);
    await sigilJson(['clients', 'enable', client.id], env);
    const [first] = (await clientEntries(ordersService, cursor)) as [ClientEntry];
    await pastSecond(first.revoked_at);
    const between = await token(client);
    expect(await active(between)).toBe(true);

    await sigilJson(['clients', 'disable', client.id], env);
    expect(await active(between)).toBe(false);
    const entries = await clientEntries(ordersService, cursor, { atLeast: 2 });
    expect(entries).toHaveLength(2);
    expect(entries[1]?.revoked_at).toBeGreaterThan(first.revoked_at);
  });

  it('when a client is deleted, its client credentials tokens introspect inactive and the feed lists it to every service', async () => {
    const client = await machine('doomed');
    const jwt = await token(client);
    expect(await active(jwt)).toBe(true);
    const [ordersCursor, reportsCursor] = [await feedEnd(ordersService), await feedEnd(reportsService)];

    expect(await sigilJson(['clients', 'delete', client.id], env)).toMatchObject({ deleted: true });
    expect(await active(jwt)).toBe(false);
    expect(await clientEntries(ordersService, ordersCursor)).toEqual([{ client_id: client.id, revoked_at: expect.any(Number), expires_at: expect.any(Number) }]);
    expect(await clientEntries(reportsService, reportsCursor)).toHaveLength(1);
  });

  it('when a client is moved to another resource and disabled in one change, the service it left is told too', async () => {
    const client = await machine('moved');
    const jwt = await token(client);
    const ordersCursor = await feedEnd(ordersService);
    // the admin API's PATCH: resources and disabled together (clients.update)
    await runAdminCommand(
      { db: suite.issuer.db, hasher: new PasswordHasher(), keys: () => ({ store: new FileKeyStore(suite.database.keysDir), publishLead: 3600 }), notifications: () => Promise.resolve(false), actor: 'test' },
      'clients.update',
      { id: client.id, resources: [REPORTS], disabled: true },
    );
    expect(await active(jwt)).toBe(false);
    expect(await clientEntries(ordersService, ordersCursor)).toEqual([{ client_id: client.id, revoked_at: expect.any(Number), expires_at: expect.any(Number) }]);
  });

  it('when tokens are requested while the client is being disabled, none issued before the refusals begin survives', async () => {
    const client = await machine('racing');
    const issued: string[] = [];
    let refused = false;
    // four requests at a time, back to back, until /token refuses the client
    const hammer = async () => {
      while (!refused) {
        const response = await tokenResponse(client);
        if (response.status === 200) issued.push(((await response.json()) as { access_token: string }).access_token);
        else {
          expect(response.status).toBe(401);
          refused = true;
        }
      }
    };
    const hammering = Promise.all([hammer(), hammer(), hammer(), hammer()]);
    // let some tokens be issued before the disabling starts
    while (issued.length < 4) await sleep(10);
    await sigilJson(['clients', 'disable', client.id], env);
    await hammering;

    expect(issued.length).toBeGreaterThanOrEqual(4);
    // whether issued before the disabling, during it, or by a request that found the client
    // enabled just before it committed: all are covered by the recorded moment
    const [entry] = (await clientEntries(ordersService, undefined, { of: client.id })).filter((listed) => listed.client_id === client.id) as [ClientEntry];
    for (const jwt of issued) {
      expect(claimsOf(jwt)['iat']).toBeLessThanOrEqual(entry.revoked_at);
      expect(await active(jwt)).toBe(false);
    }
  });
});
