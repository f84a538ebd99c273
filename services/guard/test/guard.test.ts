import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createPublicKey, type JsonWebKeyInput } from 'node:crypto';

import { SignJWT } from 'jose';

import { accessToken, AUDIENCE, guardedApp, ISSUER, JwksServer, signingKey, type SigningKey } from './support.js';

const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
const challenge = (error?: string, description?: string, scope?: string) =>
  [`Bearer realm="${AUDIENCE}"`, error && `error="${error}"`, description && `error_description="${description}"`, scope && `scope="${scope}"`]
    .filter(Boolean)
    .join(', ');
const INVALID = challenge('invalid_token', 'the access token or API key is invalid');

describe('guard: access tokens (R1–R6)', () => {
  const jwks = new JwksServer();
  let issuerKey: SigningKey;
  let attackerKey: SigningKey;
  let app: Awaited<ReturnType<typeof guardedApp>>;

  const call = (path: string, headers: Record<string, string> = {}, method = 'GET') => fetch(`${app.url}${path}`, { method, headers });
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

  beforeAll(async () => {
    issuerKey = await signingKey('issuer-key');
    attackerKey = await signingKey('attacker-key');
    jwks.keys = [issuerKey.publicJwk];
    await jwks.start();
    app = await guardedApp({ issuer: ISSUER, audience: AUDIENCE, jwksUri: jwks.url, verifiedCache: { maxEntries: 0 } });
  });

  afterAll(async () => {
    await app?.close();
    await jwks.stop();
  });

  it('when a valid token is sent, puts the principal on the request', async () => {
    const response = await call('/me', bearer(await accessToken(issuerKey, { roles: ['admin'], scope: 'orders:read orders:write' })));
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      kind: 'user',
      sub: 'user-1',
      clientId: 'web',
      scopes: ['orders:read', 'orders:write'],
      roles: ['admin'],
      issuer: ISSUER,
    });
  });

  it('when the token is a client-credentials token (sub = client_id), the principal is a client (S12)', async () => {
    const response = await call('/me', bearer(await accessToken(issuerKey, { sub: 'svc', client_id: 'svc' })));
    expect(await response.json()).toMatchObject({ kind: 'client', sub: 'svc', clientId: 'svc' });
  });

  it('R6: when no credential is sent, answers 401 with a Bearer challenge and no error code', async () => {
    const response = await call('/orders');
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe(challenge());
    expect(await response.json()).toEqual({ error: 'unauthorized', error_description: 'a bearer token or an API key is required' });
  });

  const attacks: [string, () => Promise<string>][] = [
    ['garbage', async () => 'not-a-jwt'],
    ['alg none (R3)', async () => `${b64({ alg: 'none', typ: 'at+jwt', kid: 'issuer-key' })}.${b64({ iss: ISSUER, aud: AUDIENCE, sub: 'x', client_id: 'x', jti: 'j', iat: 1, exp: 9e9 })}.`],
    [
      'HS256 keyed with the issuer public key (R3)',
      async () => {
        const pem = createPublicKey({ key: { ...issuerKey.publicJwk } as JsonWebKeyInput['key'], format: 'jwk' }).export({ type: 'spki', format: 'pem' });
        return new SignJWT({ iss: ISSUER, aud: AUDIENCE, sub: 'x', client_id: 'x', jti: 'j', scope: 'orders:read', roles: ['admin'] })
          .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: 'issuer-key' })
          .setIssuedAt()
          .setExpirationTime('10m')
          .sign(new TextEncoder().encode(String(pem)));
      },
    ],
    ['a foreign key announced with jwk (R4)', async () => accessToken(attackerKey, {}, { jwk: attackerKey.publicJwk })],
    ['a foreign key announced with jku (R4)', async () => accessToken(attackerKey, {}, { jku: `${jwks.url}?attacker` })],
    ['the issuer kid but a foreign signature (R4)', async () => accessToken(attackerKey, {}, { kid: 'issuer-key' })],
    [
      'a tampered payload',
      async () => {
        const [header, , signature] = (await accessToken(issuerKey)).split('.');
        return `${header}.${b64({ iss: ISSUER, aud: AUDIENCE, sub: 'user-1', client_id: 'web', jti: 'j', iat: 1, exp: 9e9, scope: 'orders:read orders:write', roles: ['admin'] })}.${signature}`;
      },
    ],
    ['an expired token, beyond the 30 s tolerance (R5)', async () => accessToken(issuerKey, { exp: Math.floor(Date.now() / 1000) - 31 })],
    ['nbf in the future, beyond the tolerance (R5)', async () => accessToken(issuerKey, { nbf: Math.floor(Date.now() / 1000) + 120 })],
    ['a wrong issuer (R1)', async () => accessToken(issuerKey, { iss: 'https://evil.test' })],
    ['a wrong audience (R1)', async () => accessToken(issuerKey, { aud: 'https://reports.test' })],
    ['an ID token instead of an access token (R2)', async () => accessToken(issuerKey, {}, { typ: 'JWT' })],
    ['a token without typ (R2)', async () => accessToken(issuerKey, {}, { typ: undefined })],
  ];

  it.each(attacks)('when the token is %s, answers 401 invalid_token', async (_name, make) => {
    const requestsBefore = jwks.requests;
    const response = await call('/orders', bearer(await make()));
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe(INVALID);
    expect(await response.json()).toEqual({ error: 'invalid_token', error_description: 'the access token or API key is invalid' });
    // the jku target (this JWKS server, with a query) is never fetched because of a header
    expect(jwks.requests - requestsBefore).toBeLessThanOrEqual(1);
  });

  it('R5: when exp passed less than the tolerance ago, the token is still accepted', async () => {
    const response = await call('/orders', bearer(await accessToken(issuerKey, { exp: Math.floor(Date.now() / 1000) - 20 })));
    expect(response.status).toBe(200);
  });

  it('R6: when a scope is missing, answers 403 insufficient_scope naming every required scope', async () => {
    const response = await call('/orders', bearer(await accessToken(issuerKey, { scope: 'orders:read' })), 'POST');
    expect(response.status).toBe(403);
    expect(response.headers.get('www-authenticate')).toBe(
      challenge('insufficient_scope', 'requires scope orders:read orders:write', 'orders:read orders:write'),
    );
    expect(await response.json()).toEqual({ error: 'insufficient_scope', error_description: 'requires scope orders:read orders:write' });
  });

  it('when every required scope is present, passes', async () => {
    const response = await call('/orders', bearer(await accessToken(issuerKey, { scope: 'orders:write orders:read' })), 'POST');
    expect(response.status).toBe(201);
  });

  it('when no accepted role is held, answers 403; any one accepted role passes', async () => {
    const refused = await call('/admin', bearer(await accessToken(issuerKey, { roles: ['viewer'] })));
    expect(refused.status).toBe(403);
    expect(refused.headers.get('www-authenticate')).toBe(challenge('insufficient_scope', 'requires role admin or ops'));
    expect(await refused.json()).toEqual({ error: 'insufficient_scope', error_description: 'requires role admin or ops' });
    expect((await call('/admin', bearer(await accessToken(issuerKey, { roles: ['ops'] })))).status).toBe(200);
  });

  it('when a bearer token and an API key are both sent, answers 400 invalid_request', async () => {
    const response = await call('/orders', { ...bearer(await accessToken(issuerKey)), 'x-api-key': 'sgk_x' });
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: 'invalid_request', error_description: 'send exactly one credential: a bearer token or an API key' });
  });

  it('when an API key is sent to a service without API keys configured, answers 401 without an error code', async () => {
    const response = await call('/orders', { 'x-api-key': 'sgk_x' });
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe(challenge());
  });
});
