import { beforeAll, describe, expect, it } from '@jest/globals';

import { createUser } from '../../src/domain/users.js';
import { PasswordHasher } from '../../src/domain/passwords.js';
import { backends } from '../support/backends.js';
import { basicAuth, request } from '../support/http.js';
import { issuerSuite } from '../support/issuer.js';
import { postForm, registerClient, type Credentials } from '../support/oauth.js';

const ORDERS = 'http://localhost:4001';
const NUL = '\u0000';
const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGEzKuO0ng';

/**
 * A NUL byte cannot be stored in PostgreSQL text or jsonb. Wherever one arrives in a request,
 * the answer is a 4xx, never a 5xx: the input gate refuses it first (http/input-gate.ts), and
 * behind it storage treats a lookup of such a value as finding nothing and a write of one as
 * bad input (issue "Trust under hostile input"; the second line on its own:
 * storage-nul.test.ts).
 */
describe.each(backends)('NUL bytes in requests ($name)', (backend) => {
  const suite = issuerSuite(backend);
  let machine: Credentials;
  let app: Credentials;
  let web: Credentials;

  beforeAll(async () => {
    const { clients, users } = suite.issuer.stores;
    machine = await registerClient(clients, { name: 'nul-machine', grants: ['client_credentials'], scopes: ['orders:read'], resources: [ORDERS] });
    app = await registerClient(clients, { name: 'nul-app', grants: ['password', 'refresh_token'], scopes: ['orders:read'], resources: [ORDERS] });
    web = await registerClient(clients, {
      name: 'nul-web',
      grants: ['authorization_code', 'refresh_token'],
      scopes: ['openid', 'orders:read'],
      redirectUris: ['http://127.0.0.1:9/cb'],
      resources: [ORDERS],
    });
    await createUser(users, { username: 'nadia', password: 'correct horse battery' }, new PasswordHasher({ memoryKib: 19_456, timeCost: 2, parallelism: 1 }));
  });

  const authorize = (params: Record<string, string>) =>
    request(
      `${suite.issuer.url}/auth?${new URLSearchParams({
        client_id: web.id,
        response_type: 'code',
        redirect_uri: 'http://127.0.0.1:9/cb',
        scope: 'openid orders:read',
        code_challenge: CHALLENGE,
        code_challenge_method: 'S256',
        ...params,
      }).toString()}`,
    );

  it.each([
    ['the password grant username', () => postForm(suite.issuer.url, { grant_type: 'password', username: `nadia${NUL}`, password: 'correct horse battery' }, app)],
    ['the password grant password', () => postForm(suite.issuer.url, { grant_type: 'password', username: 'nadia', password: `x${NUL}` }, app)],
    ['a refresh token', () => postForm(suite.issuer.url, { grant_type: 'refresh_token', refresh_token: `rt${NUL}` }, app)],
    ['an authorization code', () => postForm(suite.issuer.url, { grant_type: 'authorization_code', code: `c${NUL}`, redirect_uri: 'http://127.0.0.1:9/cb', code_verifier: 'v'.repeat(43) }, web)],
    ['a client_id in the body', () => postForm(suite.issuer.url, { grant_type: 'client_credentials', client_id: `${machine.id}${NUL}`, client_secret: machine.secret })],
    ['a userinfo access token', () => postForm(suite.issuer.url, { access_token: `abc${NUL}` }, undefined, { path: '/me' })],
  ])('when %s carries a NUL byte, the token endpoints answer a 4xx JSON error', async (_case, send) => {
    const response = await send();
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(response.status).toBeLessThan(500);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/u);
  });

  it('when an introspected token carries a NUL byte, the input gate answers 400 invalid_request', async () => {
    const response = await postForm(suite.issuer.url, { token: `abc${NUL}` }, machine, { path: '/token/introspection' });
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: 'invalid_request', error_description: 'the parameter "token" contains a control character' });
  });

  it('when a revoked token carries a NUL byte, the input gate answers 400 invalid_request', async () => {
    const response = await postForm(suite.issuer.url, { token: `abc${NUL}` }, machine, { path: '/token/revocation' });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: 'invalid_request' });
  });

  it.each([['client_id'], ['state'], ['nonce'], ['login_hint']])('when the authorization request\'s %s carries a NUL byte, it answers a 4xx (or redirects), never a 5xx', async (name) => {
    const value = name === 'client_id' ? `${web.id}${NUL}` : `v${NUL}`;
    const response = await authorize({ [name]: value });
    expect(response.status).toBeLessThan(500);
  });

  it('when a pushed authorization request carries a NUL state, /request answers 400 invalid_request naming it; a NUL beside a pushed request_uri at /auth is a 400 page', async () => {
    const pushed = (state: string) =>
      postForm(
        suite.issuer.url,
        { client_id: web.id, response_type: 'code', redirect_uri: 'http://127.0.0.1:9/cb', scope: 'openid orders:read', resource: ORDERS, code_challenge: CHALLENGE, code_challenge_method: 'S256', state },
        web,
        { path: '/request' },
      );
    const refused = await pushed(`s${NUL}`);
    expect(refused.status).toBe(400);
    expect(refused.headers.get('content-type')).toMatch(/^application\/json/u);
    expect(await refused.json()).toEqual({ error: 'invalid_request', error_description: 'the parameter "state" contains a control character' });

    // a clean push works; /auth with its request_uri and a NUL (in state, or in the request_uri itself) is refused as a page
    const accepted = await pushed('s1');
    const pushedBody = (await accepted.json()) as { request_uri: string };
    expect({ status: accepted.status, body: pushedBody }).toMatchObject({ status: 201, body: { request_uri: expect.stringMatching(/^urn:ietf:params:oauth:request_uri:/u) } });
    const requestUri = pushedBody.request_uri;
    const withNul: Record<string, string>[] = [{ client_id: web.id, request_uri: requestUri, state: `s${NUL}` }, { client_id: web.id, request_uri: `${requestUri}${NUL}` }];
    for (const query of withNul) {
      const response = await request(`${suite.issuer.url}/auth?${new URLSearchParams(query).toString()}`);
      expect(response.status).toBe(400);
      expect(response.headers['content-type']).toMatch(/^text\/html/u);
      expect(response.headers['content-security-policy']).toContain("frame-ancestors 'none'");
      expect(response.body).toContain('invalid_request');
    }
    // and the pushed request is still good for its own /auth
    const started = await request(`${suite.issuer.url}/auth?${new URLSearchParams({ client_id: web.id, request_uri: requestUri }).toString()}`);
    expect(started.status).toBe(303);
    expect(started.headers.location).toMatch(/^\/interaction\//u);
  });

  it('when the end-session endpoint gets a NUL byte, it answers a 4xx, never a 5xx', async () => {
    const response = await request(`${suite.issuer.url}/session/end?${new URLSearchParams({ client_id: `${web.id}${NUL}`, state: `s${NUL}` }).toString()}`);
    expect(response.status).toBeLessThan(500);
  });

  it('when a Basic client id carries a NUL byte, the token endpoint answers 401 invalid_client', async () => {
    const response = await fetch(`${suite.issuer.url}/token`, {
      method: 'POST',
      headers: { authorization: basicAuth(`${machine.id}${NUL}`, machine.secret), 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials',
    });
    expect(response.status).toBeLessThan(500);
  });
});
