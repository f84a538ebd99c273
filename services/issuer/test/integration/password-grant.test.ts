import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createRemoteJWKSet, jwtVerify } from 'jose';

import { createClient } from '../../src/domain/clients.js';
import { THROTTLE_POLICY } from '../../src/domain/login-throttle.js';
import { PasswordHasher } from '../../src/domain/passwords.js';
import { createUser, setUserDisabled, setUserRoles } from '../../src/domain/users.js';
import { backends, type TestDatabase } from '../support/backends.js';
import { startTestIssuer, type TestIssuer } from '../support/issuer.js';

const ORDERS = 'http://localhost:4001';
const PASSWORD = 'correct horse battery staple';
const INVALID = { error: 'invalid_grant', error_description: 'invalid username or password' };

interface Credentials {
  id: string;
  secret: string;
}

describe.each(backends)('password grant ($name)', (backend) => {
  let database: TestDatabase;
  let issuer: TestIssuer;
  let app: Credentials;
  let machineOnly: Credentials;
  let userId: string;
  const hasher = new PasswordHasher();

  const token = (client: Credentials, form: Record<string, string>, ip?: string) =>
    fetch(`${issuer.url}/token`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString('base64')}`,
        // TRUST_PROXY=1 in this suite, so each test can act from its own address
        ...(ip === undefined ? {} : { 'x-forwarded-for': ip }),
      },
      body: new URLSearchParams({ grant_type: 'password', ...form }),
    });
  const client = async (input: Parameters<typeof createClient>[1]) => {
    const created = await createClient(issuer.stores.clients, input);
    return { id: created.client.id, secret: created.clientSecret ?? '' };
  };

  beforeAll(async () => {
    database = await backend.create();
    issuer = await startTestIssuer(database, { TRUST_PROXY: '1' });
    app = await client({ name: 'mobile', grants: ['password', 'refresh_token'], scopes: ['orders:read', 'orders:write'], resources: [ORDERS] });
    machineOnly = await client({ name: 'batch', grants: ['client_credentials'], resources: [ORDERS] });
    userId = (await createUser(issuer.stores.users, { username: 'Alice', password: PASSWORD, roles: ['admin'] }, hasher)).id;
    await createUser(issuer.stores.users, { username: 'mallory', password: PASSWORD }, hasher);
    await setUserDisabled(issuer.stores.users, 'mallory', true);
  });

  afterAll(async () => {
    await issuer?.close();
    await database?.drop();
  });

  it('when the credentials are right, issues an RFC 9068 token for the user with their roles, and a refresh token', async () => {
    const response = await token(app, { username: 'alice', password: PASSWORD, scope: 'orders:read' }, '10.0.0.1');
    expect(response.status).toBe(200);
    const body = (await response.json()) as { access_token: string; refresh_token: string; scope: string };
    expect(body).toMatchObject({ token_type: 'Bearer', expires_in: 900, scope: 'orders:read', refresh_token: expect.any(String) });
    const { payload } = await jwtVerify(body.access_token, createRemoteJWKSet(new URL(`${issuer.url}/jwks`)), {
      issuer: issuer.issuer,
      audience: ORDERS,
      typ: 'at+jwt',
    });
    expect(payload).toMatchObject({ sub: userId, client_id: app.id, scope: 'orders:read', roles: ['admin'] });

    // roles are read afresh on refresh
    await setUserRoles(issuer.stores.users, 'alice', ['auditor']);
    const refreshed = await fetch(`${issuer.url}/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${app.id}:${app.secret}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: body.refresh_token }),
    });
    const next = (await refreshed.json()) as { access_token: string; refresh_token: string };
    const [, claims] = next.access_token.split('.');
    expect(JSON.parse(Buffer.from(claims ?? '', 'base64url').toString())).toMatchObject({ sub: userId, roles: ['auditor'] });

    // and a user with no roles at all gets an empty list
    await setUserRoles(issuer.stores.users, 'alice', []);
    const roleless = await fetch(`${issuer.url}/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${app.id}:${app.secret}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: next.refresh_token }),
    });
    const [, rolelessClaims] = ((await roleless.json()) as { access_token: string }).access_token.split('.');
    expect(JSON.parse(Buffer.from(rolelessClaims ?? '', 'base64url').toString())).toMatchObject({ sub: userId, roles: [] });
    await setUserRoles(issuer.stores.users, 'alice', ['admin']);
  });

  it('a refresh (rotation, reuse check, roles) makes two database round trips; the old token then fails and revokes the new one (S5)', async () => {
    const issued = (await (await token(app, { username: 'alice', password: PASSWORD, scope: 'orders:read' }, '10.4.0.1')).json()) as { refresh_token: string };
    const refresh = (refreshToken: string) =>
      fetch(`${issuer.url}/token`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`${app.id}:${app.secret}`).toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }),
      });
    const statements: string[] = [];
    const count = (query: { sql: string }) => {
      // the change feed's heartbeat runs on its own timer
      if (!query.sql.includes('pg_notify')) statements.push(query.sql);
    };
    issuer.db.on('query', count);
    let rotated: { access_token: string; refresh_token: string };
    try {
      const response = await refresh(issued.refresh_token);
      expect(response.status).toBe(200);
      rotated = (await response.json()) as { access_token: string; refresh_token: string };
    } finally {
      issuer.db.off('query', count);
    }
    // the token with its grant and user; the old token's consumption with its successor's insert
    expect(statements).toHaveLength(2);
    const [, claims] = rotated.access_token.split('.');
    expect(JSON.parse(Buffer.from(claims ?? '', 'base64url').toString())).toMatchObject({ sub: userId, roles: ['admin'] });

    const replayed = await refresh(issued.refresh_token);
    expect(replayed.status).toBe(400);
    expect(await replayed.json()).toMatchObject({ error: 'invalid_grant' });
    expect((await refresh(rotated.refresh_token)).status).toBe(400);
  });

  it('when a refresh token is revoked (RFC 7009), its grant ends and introspection says so (S5)', async () => {
    const issued = (await (await token(app, { username: 'alice', password: PASSWORD }, '10.3.0.1')).json()) as { access_token: string; refresh_token: string };
    const basic = `Basic ${Buffer.from(`${app.id}:${app.secret}`).toString('base64')}`;
    const introspect = async (value: string) =>
      ((await (await fetch(`${issuer.url}/token/introspection`, { method: 'POST', headers: { authorization: basic }, body: new URLSearchParams({ token: value }) })).json()) as { active: boolean });
    expect(await introspect(issued.refresh_token)).toMatchObject({ active: true });
    expect(await introspect(issued.access_token)).toMatchObject({ active: true });

    const revoked = await fetch(`${issuer.url}/token/revocation`, { method: 'POST', headers: { authorization: basic }, body: new URLSearchParams({ token: issued.refresh_token }) });
    expect(revoked.status).toBe(200);
    expect(await introspect(issued.refresh_token)).toEqual({ active: false });
    expect(await introspect(issued.access_token)).toEqual({ active: false });
    const refresh = await fetch(`${issuer.url}/token`, { method: 'POST', headers: { authorization: basic }, body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: issued.refresh_token }) });
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

    const events = await issuer.db('auth_events').where({ ip: attacker }).orderBy('id').select('event', 'username', 'client_id', 'user_id');
    expect(events.map((event) => event.event)).toEqual([
      ...Array.from({ length: THROTTLE_POLICY.pair.threshold }, () => 'login.failure'),
      'login.locked',
      'login.throttled',
    ]);
    expect(events[0]).toMatchObject({ username: 'alice', client_id: app.id, user_id: userId });
  });

  it('when a flood of wrong passwords arrives at once, nothing answers 5xx', async () => {
    const statuses = await Promise.all(
      Array.from({ length: 30 }, (_, i) => token(app, { username: `flood-${i % 3}`, password: 'nope-nope' }, '192.0.2.99').then((r) => r.status)),
    );
    expect(statuses.every((status) => status === 400 || status === 429)).toBe(true);
  });
});
