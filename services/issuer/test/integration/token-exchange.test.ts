import { beforeAll, describe, expect, it } from '@jest/globals';
import { generateKeyPair, importJWK, SignJWT, type JWTPayload } from 'jose';
import * as oidc from 'openid-client';

import { setClientDisabled, TOKEN_EXCHANGE } from '../../src/domain/clients.js';
import { PasswordHasher } from '../../src/domain/passwords.js';
import { createUser, deleteUser, setUserDisabled } from '../../src/domain/users.js';
import { FileKeyStore } from '../../src/keys/file-store.js';
import { AdminApi, adminToken, OpenApiContract } from '../support/admin-api.js';
import { backends } from '../support/backends.js';
import { sigil, sigilJson } from '../support/cli.js';
import { basicAuth, waitFor } from '../support/http.js';
import { issuerSuite, testEnv } from '../support/issuer.js';
import { claimsOf, postForm, registerClient, type Credentials } from '../support/oauth.js';

const ORDERS = 'http://localhost:4001';
const REPORTS = 'http://localhost:4002';
const INVENTORY = 'http://localhost:4003';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const PASSWORD = 'correct horse battery staple';

interface Tokens {
  access_token: string;
  refresh_token: string;
  expires_in: number;
  scope?: string;
}

/** What a refused exchange answered, as openid-client reports it. */
interface Refusal {
  status: number;
  error: string;
  description: string | undefined;
}

describe.each(backends)('token exchange, RFC 8693 ($name)', (backend) => {
  const suite = issuerSuite(backend);
  /** orders-api's own client: exchanges the tokens it is sent for reports-api tokens. */
  let ordersService: Credentials;
  /** reports-api's own client: exchanges the tokens it is sent for inventory-api tokens. */
  let reportsService: Credentials;
  let inventoryService: Credentials;
  /** The app a person signs in with; its tokens are for orders-api. */
  let app: Credentials;
  let shortApp: Credentials;
  let machine: Credentials;
  /** Has the grant, but no --may-exchange-for. */
  let targetless: Credentials;
  const configs = new Map<string, Promise<oidc.Configuration>>();

  const configOf = (client: Credentials) => {
    let config = configs.get(client.id);
    if (config === undefined) {
      config = oidc.discovery(new URL(suite.issuer.issuer), client.id, undefined, oidc.ClientSecretBasic(client.secret), { execute: [oidc.allowInsecureRequests] });
      configs.set(client.id, config);
    }
    return config;
  };
  const exchange = async (client: Credentials, parameters: Record<string, string>) => oidc.genericGrantRequest(await configOf(client), TOKEN_EXCHANGE, parameters);
  const exchanged = async (client: Credentials, subjectToken: string, extra: Record<string, string> = {}) =>
    exchange(client, { subject_token: subjectToken, subject_token_type: ACCESS_TOKEN_TYPE, ...extra });
  const refusal = async (attempt: Promise<unknown>): Promise<Refusal> => {
    try {
      await attempt;
    } catch (error) {
      if (error instanceof oidc.ResponseBodyError) return { status: error.status, error: error.error, description: error.error_description };
      throw error;
    }
    throw new Error('the exchange was not refused');
  };
  const signIn = async (username: string, client = app, scope?: string): Promise<Tokens> => {
    const response = await postForm(suite.issuer.url, { grant_type: 'password', username, password: PASSWORD, ...(scope === undefined ? {} : { scope }) }, client);
    expect(response.status).toBe(200);
    return (await response.json()) as Tokens;
  };
  const introspect = async (client: Credentials, token: string) => {
    const response = await postForm(suite.issuer.url, { token }, client, { path: '/token/introspection' });
    expect(response.status).toBe(200);
    return (await response.json()) as Record<string, unknown>;
  };
  const feed = async (client: Credentials) => {
    const response = await fetch(`${suite.issuer.url}/token/revocations`, { headers: { authorization: basicAuth(client.id, client.secret) } });
    expect(response.status).toBe(200);
    return ((await response.json()) as { revocations: Record<string, unknown>[] }).revocations;
  };
  /**
   * Whether the feed lists the grant, waiting for it: the feed lists an entry once no
   * transaction that began before it can still commit (storage/revocations.ts), which on a busy
   * PostgreSQL cluster (other suites' transactions) takes a moment after the revocation commits.
   */
  const feedLists = (client: Credentials, grantId: unknown) =>
    waitFor(async () => (await feed(client)).some((entry) => entry['grant_id'] === grantId), 10_000);
  /** A token signed with the issuer's own current key, with `claims` as given (an expired one, say). */
  const signedByIssuer = async (claims: JWTPayload) => {
    const keys = await new FileKeyStore(suite.database.keysDir).list();
    const current = keys.find((key) => key.state === 'current');
    if (current === undefined) throw new Error('no current key');
    return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: current.jwk.kid }).sign(await importJWK(current.jwk, 'RS256'));
  };

  beforeAll(async () => {
    const { clients, users } = suite.issuer.stores;
    const register = (input: Parameters<typeof registerClient>[1]) => registerClient(clients, input);
    // each service's own client declares its audience's scopes; two of them may also exchange
    ordersService = await register({ name: 'orders-api', grants: [TOKEN_EXCHANGE], resources: [ORDERS], scopes: ['orders:read', 'orders:write'], mayExchangeFor: [REPORTS] });
    reportsService = await register({ name: 'reports-api', grants: [TOKEN_EXCHANGE], resources: [REPORTS], scopes: ['reports:read'], mayExchangeFor: [INVENTORY] });
    inventoryService = await register({ name: 'inventory-api', resources: [INVENTORY], scopes: ['stock:read'] });
    const scopes = ['orders:read', 'orders:write', 'reports:read', 'stock:read'];
    app = await register({ name: 'shop', grants: ['password', 'refresh_token'], scopes, resources: [ORDERS] });
    shortApp = await register({ name: 'kiosk', grants: ['password'], scopes, resources: [ORDERS], accessTokenTtl: 120 });
    machine = await register({ name: 'machine', grants: ['client_credentials', TOKEN_EXCHANGE], scopes, resources: [ORDERS, REPORTS], mayExchangeFor: [REPORTS] });
    targetless = await register({ name: 'targetless', grants: [TOKEN_EXCHANGE], resources: [ORDERS] });
    const hasher = new PasswordHasher({ memoryKib: 19_456, timeCost: 2, parallelism: 1 });
    for (const username of ['ada', 'bea', 'cyd', 'dov', 'eli']) await createUser(users, { username, password: PASSWORD, roles: ['admin', 'auditor'] }, hasher);
  });

  it('when discovery is read, grant_types_supported lists the token exchange grant', async () => {
    const metadata = (await (await fetch(`${suite.issuer.url}/.well-known/oauth-authorization-server`)).json()) as { grant_types_supported: string[] };
    expect(metadata.grant_types_supported).toEqual(expect.arrayContaining([TOKEN_EXCHANGE, 'client_credentials', 'password']));
  });

  it('when a token for orders-api carries the scopes orders-api may pass on, exchanging it gives a reports-api token for the same person, orders-api acting (E2)', async () => {
    const subject = await signIn('ada');
    const subjectClaims = claimsOf(subject.access_token);
    // tokens for orders-api carry what orders-api may hand on (reports-api's, and what reports-api may hand on)
    expect(subjectClaims['scope']).toBe('orders:read orders:write reports:read stock:read');

    const response = await exchanged(ordersService, subject.access_token, { resource: REPORTS });
    expect(response.token_type).toBe('bearer');
    expect(response['issued_token_type']).toBe(ACCESS_TOKEN_TYPE);
    expect(response.refresh_token).toBeUndefined();
    const claims = claimsOf(response.access_token);
    expect(claims).toMatchObject({
      iss: suite.issuer.issuer,
      sub: subjectClaims['sub'],
      aud: REPORTS,
      client_id: ordersService.id,
      scope: 'reports:read stock:read',
      roles: ['admin', 'auditor'],
      act: { sub: ordersService.id },
      grant_id: subjectClaims['grant_id'],
    });
    expect(response.scope).toBe('reports:read stock:read');
    expect(claims['exp']).toBeLessThanOrEqual(Number(subjectClaims['exp']));
    expect(claims['jti']).not.toBe(subjectClaims['jti']);
    // reports-api's own client sees it active, with the chain
    expect(await introspect(reportsService, response.access_token)).toMatchObject({ active: true, sub: subjectClaims['sub'], act: { sub: ordersService.id } });
  });

  it('when no resource is named, the token is for the first --may-exchange-for target; asked scopes narrow it', async () => {
    const subject = await signIn('ada');
    const response = await exchanged(ordersService, subject.access_token, { scope: 'reports:read' });
    expect(claimsOf(response.access_token)).toMatchObject({ aud: REPORTS, scope: 'reports:read' });
    // a scope the subject token has but the target does not take is left out, as direct grants do
    const narrowed = await exchanged(ordersService, subject.access_token, { resource: REPORTS, scope: 'orders:read reports:read' });
    expect(claimsOf(narrowed.access_token)['scope']).toBe('reports:read');
  });

  it('when the subject token lives less than the exchanging client\'s lifetime, the new token expires no later than it (E2)', async () => {
    const subject = await signIn('bea', shortApp);
    expect(subject.expires_in).toBe(120);
    const response = await exchanged(ordersService, subject.access_token, { resource: REPORTS });
    expect(response.expires_in).toBeLessThanOrEqual(120);
    expect(claimsOf(response.access_token)['exp']).toBeLessThanOrEqual(Number(claimsOf(subject.access_token)['exp']));
  });

  it('when an exchanged token is exchanged again by the next service, act nests the earlier actor (RFC 8693 §4.1, E2)', async () => {
    const subject = await signIn('ada');
    const forReports = await exchanged(ordersService, subject.access_token, { resource: REPORTS });
    const forInventory = await exchanged(reportsService, forReports.access_token, { resource: INVENTORY });
    expect(claimsOf(forInventory.access_token)).toMatchObject({
      sub: claimsOf(subject.access_token)['sub'],
      aud: INVENTORY,
      client_id: reportsService.id,
      scope: 'stock:read',
      roles: ['admin', 'auditor'],
      act: { sub: reportsService.id, act: { sub: ordersService.id } },
      grant_id: claimsOf(subject.access_token)['grant_id'],
    });
    expect(await introspect(inventoryService, forInventory.access_token)).toMatchObject({ active: true });
  });

  it('when the subject token was issued for another audience, the exchange is refused with invalid_grant (E1)', async () => {
    const subject = await signIn('ada');
    // reports-api was not sent this token: orders-api was
    expect(await refusal(exchanged(reportsService, subject.access_token, { resource: INVENTORY }))).toMatchObject({
      status: 400,
      error: 'invalid_grant',
      description: expect.stringContaining('was not issued for this client\'s resources'),
    });
  });

  it('when the subject token is expired, forged, not a JWT, or a client credentials token, the exchange is refused with invalid_grant (E1)', async () => {
    const subject = claimsOf((await signIn('ada')).access_token);
    const now = Math.floor(Date.now() / 1000);
    const expired = await signedByIssuer({ ...subject, iat: now - 120, exp: now - 60, jti: 'expired-jti' });
    expect(await refusal(exchanged(ordersService, expired))).toMatchObject({ status: 400, error: 'invalid_grant', description: 'subject_token has expired' });
    // the same claims signed with a key that is not the issuer's
    const { privateKey } = await generateKeyPair('RS256');
    const forged = await new SignJWT({ ...subject }).setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: 'foreign' }).sign(privateKey);
    const notOurs = { status: 400, error: 'invalid_grant', description: 'subject_token is not an access token of this issuer' };
    expect(await refusal(exchanged(ordersService, forged))).toMatchObject(notOurs);
    expect(await refusal(exchanged(ordersService, 'not-a-token'))).toMatchObject(notOurs);
    // a client credentials token speaks for no person, and has no grant to end with
    const machineToken = await postForm(suite.issuer.url, { grant_type: 'client_credentials' }, machine);
    const { access_token: machineJwt } = (await machineToken.json()) as Tokens;
    expect(await refusal(exchanged(ordersService, machineJwt))).toMatchObject({ status: 400, error: 'invalid_grant', description: expect.stringContaining("only a person's access token") });
  });

  it('when the subject token was revoked, its grant ended, or its client was disabled, the exchange is refused with invalid_grant (E1)', async () => {
    const revoked = await signIn('cyd');
    expect((await postForm(suite.issuer.url, { token: revoked.access_token }, app, { path: '/token/revocation' })).status).toBe(200);
    expect(await refusal(exchanged(ordersService, revoked.access_token))).toMatchObject({ status: 400, error: 'invalid_grant', description: 'subject_token has been revoked' });

    const ended = await signIn('cyd');
    // revoking the refresh token ends the grant, and every access token of it
    expect((await postForm(suite.issuer.url, { token: ended.refresh_token }, app, { path: '/token/revocation' })).status).toBe(200);
    expect(await refusal(exchanged(ordersService, ended.access_token))).toMatchObject({ status: 400, error: 'invalid_grant', description: 'subject_token has been revoked' });

    // an exchanged token whose exchanging client is disabled since can no longer be exchanged on
    const exchangedByLeaky = await (async () => {
      const leaky = await registerClient(suite.issuer.stores.clients, { name: 'leaky', grants: [TOKEN_EXCHANGE], resources: [ORDERS], mayExchangeFor: [REPORTS] });
      const token = (await exchanged(leaky, (await signIn('cyd')).access_token)).access_token;
      await setClientDisabled(suite.issuer.stores.clients, leaky.id, true);
      return token;
    })();
    expect(await refusal(exchanged(reportsService, exchangedByLeaky))).toMatchObject({ status: 400, error: 'invalid_grant', description: 'subject_token has been revoked' });
  });

  it('when the resource is not one the client may exchange for, or it may exchange for none, the exchange is refused with invalid_target (E1)', async () => {
    const subject = (await signIn('ada')).access_token;
    expect(await refusal(exchanged(ordersService, subject, { resource: INVENTORY }))).toMatchObject({ status: 400, error: 'invalid_target' });
    // its own audience is not one of its targets either
    expect(await refusal(exchanged(ordersService, subject, { resource: ORDERS }))).toMatchObject({ status: 400, error: 'invalid_target' });
    expect(await refusal(exchanged(targetless, subject))).toMatchObject({ status: 400, error: 'invalid_target' });
    expect(await refusal(exchanged(targetless, subject, { resource: REPORTS }))).toMatchObject({ status: 400, error: 'invalid_target' });
  });

  it('when a scope the subject token lacks is asked for, the exchange is refused with invalid_scope: it cannot widen (E2)', async () => {
    const narrow = (await signIn('ada', app, 'orders:read')).access_token;
    expect(claimsOf(narrow)['scope']).toBe('orders:read');
    expect(await refusal(exchanged(ordersService, narrow, { resource: REPORTS, scope: 'reports:read' }))).toMatchObject({ status: 400, error: 'invalid_scope' });
    expect(await refusal(exchanged(ordersService, narrow, { resource: REPORTS, scope: 'orders:admin' }))).toMatchObject({ status: 400, error: 'invalid_scope' });
    // asked for nothing, it gets what the subject token holds of the target's scopes: none here
    const bare = await exchanged(ordersService, narrow, { resource: REPORTS });
    expect(claimsOf(bare.access_token)['scope']).toBeUndefined();
    expect(claimsOf(bare.access_token)['roles']).toEqual(['admin', 'auditor']);
  });

  it('when a client without the token exchange grant asks, the exchange is refused with unauthorized_client (E1)', async () => {
    const subject = (await signIn('ada')).access_token;
    expect(await refusal(exchanged(app, subject, { resource: REPORTS }))).toMatchObject({ status: 400, error: 'unauthorized_client' });
    // a resource service's own client with no grant at all
    expect(await refusal(exchanged(inventoryService, subject))).toMatchObject({ status: 400, error: 'unauthorized_client' });
  });

  it('when a token type other than an access token is named, an actor token or an audience is sent, or the subject token is missing, the exchange is refused with invalid_request (E1)', async () => {
    const subject = (await signIn('ada')).access_token;
    const cases: Record<string, string>[] = [
      { subject_token: subject, subject_token_type: 'urn:ietf:params:oauth:token-type:jwt' },
      { subject_token: subject, subject_token_type: 'urn:ietf:params:oauth:token-type:refresh_token' },
      { subject_token: subject },
      { subject_token_type: ACCESS_TOKEN_TYPE },
      { subject_token: subject, subject_token_type: ACCESS_TOKEN_TYPE, requested_token_type: 'urn:ietf:params:oauth:token-type:refresh_token' },
      { subject_token: subject, subject_token_type: ACCESS_TOKEN_TYPE, actor_token: subject, actor_token_type: ACCESS_TOKEN_TYPE },
      { subject_token: subject, subject_token_type: ACCESS_TOKEN_TYPE, audience: REPORTS },
    ];
    for (const parameters of cases) {
      expect({ parameters: Object.keys(parameters), ...(await refusal(exchange(ordersService, parameters))) }).toMatchObject({ status: 400, error: 'invalid_request' });
    }
    // requested_token_type access_token is what is issued anyway
    const asked = await exchanged(ordersService, subject, { requested_token_type: ACCESS_TOKEN_TYPE });
    expect(asked['issued_token_type']).toBe(ACCESS_TOKEN_TYPE);
  });

  it("when the subject's grant is revoked after the exchange, the exchanged token introspects inactive and the feed tells reports-api (E3)", async () => {
    const subject = await signIn('dov');
    const forReports = (await exchanged(ordersService, subject.access_token, { resource: REPORTS })).access_token;
    const forInventory = (await exchanged(reportsService, forReports, { resource: INVENTORY })).access_token;
    expect(await introspect(reportsService, forReports)).toMatchObject({ active: true });

    expect((await postForm(suite.issuer.url, { token: subject.refresh_token }, app, { path: '/token/revocation' })).status).toBe(200);
    expect(await introspect(reportsService, forReports)).toEqual({ active: false });
    expect(await introspect(inventoryService, forInventory)).toEqual({ active: false });
    // the grant's own resource is orders-api's; the services its tokens were exchanged for are told too
    const grantId = claimsOf(subject.access_token)['grant_id'];
    expect(await feedLists(reportsService, grantId)).toBe(true);
    expect(await feedLists(inventoryService, grantId)).toBe(true);
  });

  it('when the user is disabled or deleted after the exchange, the exchanged token introspects inactive (E3)', async () => {
    const disabled = (await exchanged(ordersService, (await signIn('eli')).access_token)).access_token;
    expect(await introspect(reportsService, disabled)).toMatchObject({ active: true });
    await setUserDisabled(suite.issuer.stores.users, 'eli', true);
    expect(await introspect(reportsService, disabled)).toEqual({ active: false });
    await setUserDisabled(suite.issuer.stores.users, 'eli', false);

    const deleted = (await exchanged(ordersService, (await signIn('eli')).access_token)).access_token;
    expect(await introspect(reportsService, deleted)).toMatchObject({ active: true });
    await deleteUser(suite.issuer.stores.users, 'eli');
    expect(await introspect(reportsService, deleted)).toEqual({ active: false });
    expect(await feedLists(reportsService, claimsOf(deleted)['grant_id'])).toBe(true);
  });

  it('when the exchanging client is disabled after the exchange, the exchanged token introspects inactive (E3)', async () => {
    const relay = await registerClient(suite.issuer.stores.clients, { name: 'relay', grants: [TOKEN_EXCHANGE], resources: [ORDERS], mayExchangeFor: [REPORTS] });
    const token = (await exchanged(relay, (await signIn('ada')).access_token)).access_token;
    expect(await introspect(reportsService, token)).toMatchObject({ active: true });
    await setClientDisabled(suite.issuer.stores.clients, relay.id, true);
    expect(await introspect(reportsService, token)).toEqual({ active: false });
  });

  it('when exchange audiences are recorded on a grant, a re-save by the engine keeps them and its revocation names them; a gone or expired grant records nothing', async () => {
    const { payloads } = suite.issuer.stores;
    const audiencesOf = async (grantId: string) =>
      (await suite.issuer.db('revocations').where({ kind: 'grant', value: grantId }).first<{ audiences: string[] | null } | undefined>('audiences'))?.audiences;
    const grant = (id: string, expiresAt = new Date(Date.now() + 600_000)) =>
      payloads.upsert({ type: 'Grant', id, payload: { jti: id, kind: 'Grant', resources: { [ORDERS]: 'orders:read' } }, expiresAt });
    await grant('g-kept');
    expect(await payloads.recordExchangeAudience('g-kept', REPORTS)).toBe(true);
    expect(await payloads.recordExchangeAudience('g-kept', REPORTS)).toBe(true);
    // the engine saves a grant whole again (a new consent in the same session)
    await grant('g-kept');
    expect(await payloads.recordExchangeAudience('g-kept', INVENTORY)).toBe(true);
    await payloads.revokeGrant('g-kept');
    expect([...((await audiencesOf('g-kept')) ?? [])].sort()).toEqual([ORDERS, REPORTS, INVENTORY].sort());

    expect(await payloads.recordExchangeAudience('g-kept', REPORTS)).toBe(false);
    expect(await payloads.recordExchangeAudience('g-never', REPORTS)).toBe(false);
    await grant('g-expired', new Date(Date.now() - 1000));
    expect(await payloads.recordExchangeAudience('g-expired', REPORTS)).toBe(false);
  });

  it('when exchanges race with the revocation of their grant, every exchange that was recorded is named by the revocation', async () => {
    const { payloads } = suite.issuer.stores;
    for (let round = 0; round < 20; round += 1) {
      const id = `g-race-${round}`;
      await payloads.upsert({ type: 'Grant', id, payload: { jti: id, kind: 'Grant', resources: { [ORDERS]: 'orders:read' } }, expiresAt: new Date(Date.now() + 600_000) });
      const [recorded] = await Promise.all([payloads.recordExchangeAudience(id, REPORTS), payloads.revokeGrant(id)]);
      const row = await suite.issuer.db('revocations').where({ kind: 'grant', value: id }).first<{ audiences: string[] | null }>('audiences');
      if (recorded) expect(row?.audiences).toContain(REPORTS);
      else expect(row?.audiences).toEqual([ORDERS]);
    }
  });

  it('when the CLI registers a client with the grant and --may-exchange-for, it exchanges; show prints the targets, update --no-may-exchange-for clears them, bad values exit 2', async () => {
    const env = testEnv(suite.database);
    const created = await sigilJson<{ client_id: string; client_secret: string }>(
      ['clients', 'create', '--name', 'gateway', '--grant', TOKEN_EXCHANGE, '--resource', ORDERS, '--may-exchange-for', REPORTS, '--may-exchange-for', INVENTORY],
      env,
    );
    const gateway = { id: created.client_id, secret: created.client_secret };
    expect(await sigilJson(['clients', 'show', created.client_id], env)).toMatchObject({ grants: [TOKEN_EXCHANGE], may_exchange_for: [REPORTS, INVENTORY] });
    const subject = (await signIn('ada')).access_token;
    expect(claimsOf((await exchanged(gateway, subject, { resource: INVENTORY })).access_token)).toMatchObject({ aud: INVENTORY, act: { sub: gateway.id } });

    expect(await sigilJson(['clients', 'update', created.client_id, '--no-may-exchange-for'], env)).toMatchObject({ may_exchange_for: [] });
    // the change applies to the next request
    configs.delete(gateway.id);
    expect(await refusal(exchanged(gateway, subject, { resource: REPORTS }))).toMatchObject({ error: 'invalid_target' });

    const withoutGrant = await sigil(['clients', 'create', '--name', 'x', '--grant', 'client_credentials', '--may-exchange-for', REPORTS], env);
    expect({ code: withoutGrant.code, stderr: withoutGrant.stderr.trim() }).toEqual({ code: 2, stderr: `sigil: --may-exchange-for is only meaningful with the ${TOKEN_EXCHANGE} grant` });
    const badTarget = await sigil(['clients', 'create', '--name', 'x', '--grant', TOKEN_EXCHANGE, '--may-exchange-for', 'not a uri'], env);
    expect({ code: badTarget.code, stderr: badTarget.stderr.trim() }).toEqual({ code: 2, stderr: 'sigil: --may-exchange-for "not a uri": a resource must be an absolute URI without a fragment' });
  });

  it('when the admin API creates and changes a client, may_exchange_for maps to --may-exchange-for and its answers conform to the OpenAPI document', async () => {
    const adminClient = await registerClient(suite.issuer.stores.clients, { name: 'provisioner', grants: ['client_credentials'], scopes: ['sigil:admin'], resources: [`${suite.issuer.issuer}/admin`] });
    const api = new AdminApi(suite.issuer.url, await OpenApiContract.load(`${suite.issuer.url}/admin/v1/openapi.json`), await adminToken(suite.issuer.url, adminClient));
    const created = await api.call<{ client_id: string; client: Record<string, unknown> }>('POST', '/clients', {
      body: { name: 'edge', grants: [TOKEN_EXCHANGE], resources: [ORDERS], may_exchange_for: [REPORTS] },
    });
    expect(created.status).toBe(201);
    expect(created.body.client).toMatchObject({ grants: [TOKEN_EXCHANGE], may_exchange_for: [REPORTS] });
    const changed = await api.call('PATCH', `/clients/${created.body.client_id}`, { body: { may_exchange_for: [INVENTORY, INVENTORY] } });
    expect(changed.body).toMatchObject({ may_exchange_for: [INVENTORY] });
    const refused = await api.call('POST', '/clients', { body: { name: 'edge', grants: ['client_credentials'], may_exchange_for: [REPORTS] } });
    expect(refused.status).toBe(400);
    expect(JSON.stringify(refused.body)).toContain('may_exchange_for is only meaningful');
    expect(api.nonconforming).toEqual([]);
  });

  it("when a service's own client has the token exchange grant, it still declares its audience's scopes", async () => {
    const response = await postForm(suite.issuer.url, { grant_type: 'client_credentials', resource: REPORTS }, machine);
    // reports-api's own client (token exchange grant) declares reports:read, plus inventory's stock:read it may pass on
    expect(claimsOf(((await response.json()) as Tokens).access_token)['scope']).toBe('reports:read stock:read');
  });
});
