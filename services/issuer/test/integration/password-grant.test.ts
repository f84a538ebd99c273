import { beforeAll, describe, expect, it } from '@jest/globals';
import { createRemoteJWKSet, jwtVerify } from 'jose';

import { THROTTLE_POLICY } from '../../src/domain/login-throttle.js';
import { PasswordHasher } from '../../src/domain/passwords.js';
import { createUser, setUserDisabled, setUserRoles } from '../../src/domain/users.js';
import { backends } from '../support/backends.js';
import { issuerSuite } from '../support/issuer.js';
import { claimsOf, postForm, registerClient, type Credentials } from '../support/oauth.js';
import { recordQueries } from '../support/storage.js';

const ORDERS = 'http://localhost:4001';
const PASSWORD = 'correct horse battery staple';
const INVALID = { error: 'invalid_grant', error_description: 'invalid username or password' };

describe.each(backends)('password grant ($name)', (backend) => {
  // TRUST_PROXY=1 in this suite, so each test can act from its own address
  const suite = issuerSuite(backend, { TRUST_PROXY: '1' });
  let app: Credentials;
  let machineOnly: Credentials;
  let userId: string;
  const hasher = new PasswordHasher();

  const token = (client: Credentials, form: Record<string, string>, ip?: string) =>
    postForm(suite.issuer.url, { grant_type: 'password', ...form }, client, { headers: ip === undefined ? {} : { 'x-forwarded-for': ip } });

  beforeAll(async () => {
    const { stores } = suite.issuer;
    app = await registerClient(stores.clients, { name: 'mobile', grants: ['password', 'refresh_token'], scopes: ['orders:read', 'orders:write'], resources: [ORDERS] });
    machineOnly = await registerClient(stores.clients, { name: 'batch', grants: ['client_credentials'], resources: [ORDERS] });
    userId = (await createUser(stores.users, { username: 'Alice', password: PASSWORD, roles: ['admin'] }, hasher)).id;
    await createUser(stores.users, { username: 'mallory', password: PASSWORD }, hasher);
    await setUserDisabled(stores.users, 'mallory', true);
  });

  it('when the credentials are right, issues an RFC 9068 token for the user with their roles, and a refresh token', async () => {
    const response = await token(app, { username: 'alice', password: PASSWORD, scope: 'orders:read' }, '10.0.0.1');
    expect(response.status).toBe(200);
    const body = (await response.json()) as { access_token: string; refresh_token: string; scope: string };
    expect(body).toMatchObject({ token_type: 'Bearer', expires_in: 900, scope: 'orders:read', refresh_token: expect.any(String) });
    const { payload } = await jwtVerify(body.access_token, createRemoteJWKSet(new URL(`${suite.issuer.url}/jwks`)), {
      issuer: suite.issuer.issuer,
      audience: ORDERS,
      typ: 'at+jwt',
    });
    expect(payload).toMatchObject({ sub: userId, client_id: app.id, scope: 'orders:read', roles: ['admin'] });

    // roles are read afresh on refresh
    await setUserRoles(suite.issuer.stores.users, 'alice', ['auditor']);
    const refreshed = await postForm(suite.issuer.url, { grant_type: 'refresh_token', refresh_token: body.refresh_token }, app);
    const next = (await refreshed.json()) as { access_token: string; refresh_token: string };
    expect(claimsOf(next.access_token)).toMatchObject({ sub: userId, roles: ['auditor'] });

    // and a user with no roles at all gets an empty list
    await setUserRoles(suite.issuer.stores.users, 'alice', []);
    const roleless = await postForm(suite.issuer.url, { grant_type: 'refresh_token', refresh_token: next.refresh_token }, app);
    expect(claimsOf(((await roleless.json()) as { access_token: string }).access_token)).toMatchObject({ sub: userId, roles: [] });
    await setUserRoles(suite.issuer.stores.users, 'alice', ['admin']);
  });

  it('a refresh (rotation, reuse check, roles) makes two database round trips; the old token then fails and revokes the live one (S5)', async () => {
    const issued = (await (await token(app, { username: 'alice', password: PASSWORD, scope: 'orders:read' }, '10.4.0.1')).json()) as { refresh_token: string };
    const refresh = (refreshToken: string) => postForm(suite.issuer.url, { grant_type: 'refresh_token', refresh_token: refreshToken }, app);
    // the change feed's heartbeat runs on its own timer
    const queries = recordQueries(suite.issuer.db, (sql) => !sql.includes('pg_notify'));
    let rotated: { access_token: string; refresh_token: string };
    try {
      const response = await refresh(issued.refresh_token);
      expect(response.status).toBe(200);
      rotated = (await response.json()) as { access_token: string; refresh_token: string };
    } finally {
      queries.stop();
    }
    // the token with its grant and user; the old token's consumption with its successor's insert
    expect(queries.statements).toHaveLength(2);
    expect(claimsOf(rotated.access_token)).toMatchObject({ sub: userId, roles: ['admin'] });

    // once its successor has been used (before, it would be a retry: refresh-retry.test.ts)
    const next = (await (await refresh(rotated.refresh_token)).json()) as { refresh_token: string };
    const replayed = await refresh(issued.refresh_token);
    expect(replayed.status).toBe(400);
    expect(await replayed.json()).toMatchObject({ error: 'invalid_grant' });
    expect((await refresh(next.refresh_token)).status).toBe(400);
  });

  it('when a refresh token is revoked (RFC 7009), its grant ends and introspection says so (S5)', async () => {
    const issued = (await (await token(app, { username: 'alice', password: PASSWORD }, '10.3.0.1')).json()) as { access_token: string; refresh_token: string };
    const introspect = async (value: string) =>
      ((await (await postForm(suite.issuer.url, { token: value }, app, { path: '/token/introspection' })).json()) as { active: boolean });
    expect(await introspect(issued.refresh_token)).toMatchObject({ active: true });
    expect(await introspect(issued.access_token)).toMatchObject({ active: true });

    const revoked = await postForm(suite.issuer.url, { token: issued.refresh_token }, app, { path: '/token/revocation' });
    expect(revoked.status).toBe(200);
    expect(await introspect(issued.refresh_token)).toEqual({ active: false });
    expect(await introspect(issued.access_token)).toEqual({ active: false });
    const refresh = await postForm(suite.issuer.url, { grant_type: 'refresh_token', refresh_token: issued.refresh_token }, app);
    expect(refresh.status).toBe(400);
    expect(await refresh.json()).toMatchObject({ error: 'invalid_grant' });
  });

  it.each([
    ['a wrong password', { username: 'alice', password: 'wrong password!' }],
    ['an unknown user', { username: 'nobody', password: PASSWORD }],
    ['a disabled user', { username: 'mallory', password: PASSWORD }],
    ['an over-long password', { username: 'alice', password: 'x'.repeat(2000) }],
  ])('when the request has %s, answers the same 400 invalid_grant', async (_case, form) => {
    const response = await token(app, form, `10.1.0.${Math.floor(Math.random() * 250)}`);
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual(INVALID);
  });

  it('when the client is not registered for the password grant, answers 400 unauthorized_client (S4)', async () => {
    const response = await token(machineOnly, { username: 'alice', password: PASSWORD });
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: 'unauthorized_client', error_description: 'requested grant type is not allowed for this client' });
  });

  it('when username or password is missing, answers 400 invalid_request', async () => {
    const response = await token(app, { username: 'alice' });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: 'invalid_request' });
  });

  it('when a scope outside the client registration is asked for, answers 400 invalid_scope', async () => {
    const response = await token(app, { username: 'alice', password: PASSWORD, scope: 'orders:delete' }, '10.2.0.1');
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: 'invalid_scope' });
  });

  it('when one address keeps failing, it is locked out with 429 + Retry-After, other addresses are not, and it is all audited', async () => {
    const attacker = '203.0.113.7';
    for (let i = 0; i < THROTTLE_POLICY.pair.threshold - 1; i += 1) {
      expect((await token(app, { username: 'alice', password: `guess-${i}-wrong` }, attacker)).status).toBe(400);
    }
    const locking = await token(app, { username: 'alice', password: 'last-guess-wrong' }, attacker);
    expect(locking.status).toBe(400);
    const locked = await token(app, { username: 'alice', password: PASSWORD }, attacker);
    expect(locked.status).toBe(429);
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(Number(locked.headers.get('retry-after'))).toBeLessThanOrEqual(THROTTLE_POLICY.pair.baseLockSeconds);
    expect(await locked.json()).toEqual({ error: 'invalid_grant', error_description: 'too many failed sign-in attempts; retry later' });

    // the real user, elsewhere, still signs in
    expect((await token(app, { username: 'alice', password: PASSWORD }, '198.51.100.20')).status).toBe(200);

    const events = await suite.issuer.db('auth_events').where({ ip: attacker }).orderBy('id').select('event', 'username', 'client_id', 'user_id');
    expect(events.map((event) => event.event)).toEqual([
      ...Array.from({ length: THROTTLE_POLICY.pair.threshold }, () => 'login.failure'),
      'login.locked',
      'login.throttled',
    ]);
    expect(events[0]).toMatchObject({ username: 'alice', client_id: app.id, user_id: userId });
  });

  it('when a flood of wrong passwords arrives at once, nothing answers 500: refusals are 429, or 503 with Retry-After when the hasher is full', async () => {
    const responses = await Promise.all(Array.from({ length: 30 }, (_, i) => token(app, { username: `flood-${i % 3}`, password: 'nope-nope' }, '192.0.2.99')));
    expect(responses.every((response) => [400, 429, 503].includes(response.status))).toBe(true);
    for (const response of responses.filter((each) => each.status === 503)) {
      expect(response.headers.get('retry-after')).toBe('1');
      expect(await response.json()).toMatchObject({ error: 'temporarily_unavailable' });
    }
  });
});
