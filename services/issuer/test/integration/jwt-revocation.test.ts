import { beforeAll, describe, expect, it } from '@jest/globals';
import { generateKeyPair, SignJWT } from 'jose';

import { PasswordHasher } from '../../src/domain/passwords.js';
import { createUser, setUserDisabled } from '../../src/domain/users.js';
import { backends } from '../support/backends.js';
import { issuerSuite } from '../support/issuer.js';
import { claimsOf, postForm, registerClient, type Credentials } from '../support/oauth.js';
import { signInWithoutBrowser } from '../support/sign-in.js';

const ORDERS = 'http://localhost:4001';
const PASSWORD = 'correct horse battery';
const CALLBACK = 'http://127.0.0.1:8080/callback';

interface Tokens {
  access_token: string;
  refresh_token: string;
}

describe.each(backends)('revocation of JWT access tokens and grants ($name)', (backend) => {
  const suite = issuerSuite(backend);
  let machine: Credentials;
  let other: Credentials;
  let app: Credentials;
  let ordersService: Credentials;

  beforeAll(async () => {
    const { clients, users } = suite.issuer.stores;
    machine = await registerClient(clients, { name: 'machine', grants: ['client_credentials'], scopes: ['orders:read'], resources: [ORDERS] });
    other = await registerClient(clients, { name: 'other', grants: ['client_credentials'], scopes: ['orders:read'], resources: [ORDERS] });
    app = await registerClient(clients, { name: 'app', grants: ['password', 'refresh_token'], scopes: ['orders:read'], resources: [ORDERS] });
    ordersService = await registerClient(clients, { name: 'orders-api', grants: ['client_credentials'], resources: [ORDERS] });
    const hasher = new PasswordHasher({ memoryKib: 19_456, timeCost: 2, parallelism: 1 });
    for (const username of ['rita', 'rudi', 'resa', 'rosa']) await createUser(users, { username, password: PASSWORD }, hasher);
  });

  const clientToken = async (client: Credentials) => {
    const response = await postForm(suite.issuer.url, { grant_type: 'client_credentials' }, client);
    expect(response.status).toBe(200);
    return ((await response.json()) as Tokens).access_token;
  };
  const signIn = async (username: string): Promise<Tokens> => {
    const response = await postForm(suite.issuer.url, { grant_type: 'password', username, password: PASSWORD }, app);
    expect(response.status).toBe(200);
    return (await response.json()) as Tokens;
  };
  const refresh = (refreshToken: string) => postForm(suite.issuer.url, { grant_type: 'refresh_token', refresh_token: refreshToken }, app);
  const revoke = async (client: Credentials, token: string) => {
    const response = await postForm(suite.issuer.url, { token }, client, { path: '/token/revocation' });
    return { status: response.status, body: await response.text() };
  };
  const active = async (token: string) => {
    const response = await postForm(suite.issuer.url, { token }, ordersService, { path: '/token/introspection' });
    expect(response.status).toBe(200);
    return ((await response.json()) as { active: boolean }).active;
  };
  const recorded = (value: string) => suite.issuer.db('revocations').where({ value }).select<{ kind: string; audiences: string[] | null; expires_at: Date }[]>('kind', 'audiences', 'expires_at');

  it('when its client revokes a JWT access token, answers 200 and the token introspects inactive, recorded until its exp', async () => {
    const token = await clientToken(machine);
    const sibling = await clientToken(machine);
    expect(await active(token)).toBe(true);
    expect(await revoke(machine, token)).toEqual({ status: 200, body: '' });
    expect(await active(token)).toBe(false);
    // only that token: another one of the same client stays active
    expect(await active(sibling)).toBe(true);
    const { jti, exp } = claimsOf(token) as { jti: string; exp: number };
    const rows = await recorded(jti);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ kind: 'jti', audiences: [ORDERS] });
    expect(new Date(rows[0]?.expires_at ?? 0).getTime()).toBe(exp * 1000);
  });

  it("when another client revokes a client's JWT access token, answers 200 and nothing changes", async () => {
    const token = await clientToken(machine);
    expect(await revoke(other, token)).toEqual({ status: 200, body: '' });
    // not even the resource service of its audience may revoke it (only the client it was issued to)
    expect(await revoke(ordersService, token)).toEqual({ status: 200, body: '' });
    expect(await active(token)).toBe(true);
    expect(await recorded((claimsOf(token) as { jti: string }).jti)).toHaveLength(0);
  });

  it('when a forged or altered JWT is revoked, answers 200 and records nothing', async () => {
    const genuine = await clientToken(machine);
    const claims = claimsOf(genuine);
    const { privateKey } = await generateKeyPair('RS256');
    const header = JSON.parse(Buffer.from(genuine.split('.')[0] ?? '', 'base64url').toString()) as { kid: string };
    // the same claims and kid, signed by a key that is not Sigil's
    const forged = await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: header.kid }).sign(privateKey);
    const altered = `${genuine.slice(0, -4)}${genuine.endsWith('AAAA') ? 'BBBB' : 'AAAA'}`;
    const before = await suite.issuer.db('revocations').count<{ count: string }[]>('* as count');
    for (const token of [forged, altered, 'eyJhbGciOiJSUzI1NiJ9.e30.x']) expect(await revoke(machine, token)).toEqual({ status: 200, body: '' });
    expect(await suite.issuer.db('revocations').count<{ count: string }[]>('* as count')).toEqual(before);
    expect(await active(genuine)).toBe(true);
  });

  it("when a refresh token is revoked, its grant is recorded ended and the grant's access tokens introspect inactive", async () => {
    const tokens = await signIn('rita');
    const grantId = claimsOf(tokens.access_token)['grant_id'] as string;
    expect(await active(tokens.access_token)).toBe(true);
    expect(await revoke(app, tokens.refresh_token)).toEqual({ status: 200, body: '' });
    expect(await active(tokens.access_token)).toBe(false);
    const rows = await recorded(grantId);
    expect(rows).toEqual([expect.objectContaining({ kind: 'grant', audiences: [ORDERS] })]);
    // until the longest access token lifetime from now
    expect(new Date(rows[0]?.expires_at ?? 0).getTime()).toBeGreaterThan(Date.now() + 86_000_000);
  });

  it('when a spent refresh token is reused, its grant is recorded ended', async () => {
    const tokens = await signIn('rudi');
    const grantId = claimsOf(tokens.access_token)['grant_id'] as string;
    const rotated = await refresh(tokens.refresh_token);
    expect(rotated.status).toBe(200);
    const next = (await rotated.json()) as Tokens;
    // the successor used: presenting the first one again is a reuse, not a retry
    expect((await refresh(next.refresh_token)).status).toBe(200);
    expect((await refresh(tokens.refresh_token)).status).toBe(400);
    expect(await recorded(grantId)).toEqual([expect.objectContaining({ kind: 'grant' })]);
    expect(await active(next.access_token)).toBe(false);
  });

  it("when an authorization code is replayed, its grant is recorded ended: the first exchange's access token introspects inactive and the feed lists the grant", async () => {
    const web = await registerClient(suite.issuer.stores.clients, {
      name: 'replayed web',
      grants: ['authorization_code', 'refresh_token'],
      scopes: ['orders:read'],
      redirectUris: [CALLBACK],
      resources: [ORDERS],
      firstParty: true,
    });
    const { callbackUrl, codeVerifier } = await signInWithoutBrowser(suite.issuer.issuer, { clientId: web.id, redirectUri: CALLBACK, scope: 'orders:read', username: 'rosa', password: PASSWORD });
    const exchange = { grant_type: 'authorization_code', code: callbackUrl.searchParams.get('code') ?? '', redirect_uri: CALLBACK, code_verifier: codeVerifier };
    const first = await postForm(suite.issuer.url, exchange, web);
    expect(first.status).toBe(200);
    const tokens = (await first.json()) as Tokens;
    const grantId = claimsOf(tokens.access_token)['grant_id'] as string;
    expect(await active(tokens.access_token)).toBe(true);

    const replay = await postForm(suite.issuer.url, exchange, web);
    expect(replay.status).toBe(400);
    expect(((await replay.json()) as { error: string }).error).toBe('invalid_grant');
    expect(await active(tokens.access_token)).toBe(false);
    expect((await refresh(tokens.refresh_token)).status).toBe(400);
    expect(await recorded(grantId)).toEqual([expect.objectContaining({ kind: 'grant', audiences: [ORDERS] })]);
    const feed = await fetch(`${suite.issuer.url}/token/revocations`, { headers: { authorization: `Basic ${Buffer.from(`${ordersService.id}:${ordersService.secret}`).toString('base64')}` } });
    expect(feed.status).toBe(200);
    expect(JSON.stringify(await feed.json())).toContain(grantId);
  });

  it("when a user is disabled, each of its grants is recorded ended with the grant's deletion", async () => {
    const first = await signIn('resa');
    const second = await signIn('resa');
    await setUserDisabled(suite.issuer.stores.users, 'resa', true);
    for (const tokens of [first, second]) {
      expect(await recorded(claimsOf(tokens.access_token)['grant_id'] as string)).toEqual([expect.objectContaining({ kind: 'grant', audiences: [ORDERS] })]);
      expect(await active(tokens.access_token)).toBe(false);
    }
  });
});
