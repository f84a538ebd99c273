import { beforeAll, describe, expect, it } from '@jest/globals';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';

import { backends } from '../support/backends.js';
import { issuerSuite } from '../support/issuer.js';
import { claimsOf, postForm, registerClient, type Credentials } from '../support/oauth.js';

const ORDERS = 'http://localhost:4001';
const REPORTS = 'http://localhost:4002';

interface TokenResponse {
  access_token: string;
  token_type: string;
  expires_in: number;
  scope?: string;
}

describe.each(backends)('client credentials ($name)', (backend) => {
  const suite = issuerSuite(backend);
  let machine: Credentials;
  let plain: Credentials;

  const token = (form: Record<string, string>, auth?: Credentials) =>
    postForm(suite.issuer.url, form, auth, { headers: { 'content-type': 'application/x-www-form-urlencoded' } });

  beforeAll(async () => {
    machine = await registerClient(suite.issuer.stores.clients, {
      name: 'billing',
      grants: ['client_credentials'],
      scopes: ['orders:read', 'orders:write', 'reports:read'],
      roles: ['admin', 'billing'],
      resources: [ORDERS, REPORTS],
    });
    plain = await registerClient(suite.issuer.stores.clients, {
      name: 'plain',
      grants: ['client_credentials'],
      scopes: ['reports:read'],
      resources: [REPORTS],
    });
  });

  it('when a client asks for a token, gets an RFC 9068 JWT that verifies against jwks_uri', async () => {
    const response = await token({ grant_type: 'client_credentials', scope: 'orders:read' }, machine);
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const body = (await response.json()) as TokenResponse;
    expect(body).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 900, scope: 'orders:read' });

    const discovery = (await (await fetch(`${suite.issuer.url}/.well-known/openid-configuration`)).json()) as { jwks_uri: string };
    const jwks = createRemoteJWKSet(new URL(discovery.jwks_uri));
    const { payload, protectedHeader } = await jwtVerify(body.access_token, jwks, {
      issuer: suite.issuer.issuer,
      audience: ORDERS,
      typ: 'at+jwt',
      algorithms: ['RS256'],
    });
    expect(protectedHeader).toEqual({ alg: 'RS256', typ: 'at+jwt', kid: expect.any(String) });
    expect(payload).toEqual({
      iss: suite.issuer.issuer,
      sub: machine.id,
      aud: ORDERS,
      client_id: machine.id,
      scope: 'orders:read',
      roles: ['admin', 'billing'],
      iat: expect.any(Number),
      exp: expect.any(Number),
      jti: expect.any(String),
    });
    expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBe(900);
  });

  it('when the request names a registered resource (RFC 8707), that resource is the audience', async () => {
    const body = (await (await token({ grant_type: 'client_credentials', resource: REPORTS, scope: 'reports:read' }, machine)).json()) as TokenResponse;
    expect(claimsOf(body.access_token)).toMatchObject({ aud: REPORTS, scope: 'reports:read' });
  });

  it('when no scope is asked for, grants every scope the client is registered for', async () => {
    const body = (await (await token({ grant_type: 'client_credentials' }, machine)).json()) as TokenResponse;
    expect(body.scope).toBe('orders:read orders:write reports:read');
  });

  it('when the client has no roles, the token carries roles: []', async () => {
    const body = (await (await token({ grant_type: 'client_credentials' }, plain)).json()) as TokenResponse;
    expect(claimsOf(body.access_token)).toMatchObject({ aud: REPORTS, roles: [] });
  });

  it('when the secret is sent in the body (client_secret_post), it is accepted too', async () => {
    const response = await token({ grant_type: 'client_credentials', client_id: machine.id, client_secret: machine.secret });
    expect(response.status).toBe(200);
  });

  it('when the signing key is looked up, its kid is the one published in the JWKS', async () => {
    const body = (await (await token({ grant_type: 'client_credentials' }, machine)).json()) as TokenResponse;
    const { keys } = (await (await fetch(`${suite.issuer.url}/jwks`)).json()) as { keys: { kid: string }[] };
    expect(keys.map((key) => key.kid)).toContain(decodeProtectedHeader(body.access_token).kid);
  });

  it.each([
    ['an unknown client', () => ({ id: 'nobody', secret: 'x' }), {}, 401, { error: 'invalid_client', error_description: 'client authentication failed' }],
    ['a wrong secret', () => ({ id: machine.id, secret: `${machine.secret}x` }), {}, 401, { error: 'invalid_client', error_description: 'client authentication failed' }],
    ['no client authentication', () => undefined, {}, 401, { error: 'invalid_client', error_description: 'client authentication is required' }],
    [
      'a grant the client is not registered for',
      () => machine,
      { grant_type: 'refresh_token', refresh_token: 'x' },
      400,
      { error: 'unauthorized_client', error_description: 'requested grant type is not allowed for this client' },
    ],
    [
      'a scope the client may not have (S6)',
      () => machine,
      { scope: 'orders:read orders:delete' },
      400,
      { error: 'invalid_scope', error_description: 'requested scope is not allowed', scope: 'orders:delete' },
    ],
    [
      'a resource the client has not registered (S6)',
      () => machine,
      { resource: 'https://evil.example.com' },
      400,
      { error: 'invalid_target', error_description: 'resource indicator is not registered for this client' },
    ],
    [
      'a resource that is not an absolute URI',
      () => machine,
      { resource: 'orders' },
      400,
      { error: 'invalid_target', error_description: 'resource indicator must be an absolute URI' },
    ],
    ['an unknown grant type', () => machine, { grant_type: 'urn:example:magic' }, 400, { error: 'unsupported_grant_type', error_description: 'unsupported grant_type requested' }],
  ])('when the request has %s, answers the exact RFC 6749 error (S6, S7)', async (_case, auth, form, status, expected) => {
    const response = await token({ grant_type: 'client_credentials', ...form }, auth());
    expect(response.status).toBe(status);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/u);
    expect(await response.json()).toEqual(expected);
  });

  it.each([
    ['a client_secret sent twice', () => 'client_secret=x&client_secret=y', {}, 400, 'invalid_request'],
    ['a client_id sent twice', () => `client_id=${machine.id}&client_id=${machine.id}`, {}, 400, 'invalid_request'],
    ['a client attestation beside a secret', () => `client_id=${machine.id}&client_secret=${machine.secret}`, { 'oauth-client-attestation': 'x.y.z' }, 400, 'invalid_request'],
    ['a secret without any client id', () => 'client_secret=x', {}, 401, 'invalid_client'],
    ['an empty client_id', () => 'client_id=', {}, 401, 'invalid_client'],
  ])('when the client credentials are %s, the error says whether a client was named at all (RFC 6749 §5.2)', async (_case, credentials, headers, status, error) => {
    const response = await fetch(`${suite.issuer.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: `grant_type=client_credentials&${credentials()}`,
    });
    expect(response.status).toBe(status);
    expect(((await response.json()) as { error: string }).error).toBe(error);
  });

  it('when a client is refused with Basic auth, the 401 carries WWW-Authenticate: Basic', async () => {
    const response = await token({ grant_type: 'client_credentials' }, { id: machine.id, secret: 'wrong' });
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toMatch(/^Basic realm=/u);
  });
});
