import fs from 'node:fs/promises';
import path from 'node:path';

import { beforeAll, describe, expect, it } from '@jest/globals';

import { backends } from '../support/backends.js';
import { basicAuth, request, type RawResponse } from '../support/http.js';
import { issuerSuite } from '../support/issuer.js';
import { registerClient, type Credentials } from '../support/oauth.js';

const ORDERS = 'http://localhost:4001';
const PUBLIC_MEMBERS = ['alg', 'e', 'kid', 'kty', 'n', 'use'];

interface Metadata {
  issuer: string;
  [member: string]: unknown;
}

/** A stack frame ("at fn (file:1:2)"), a source path or a module path: none may reach a client (K4). */
const STACK_OR_PATH = /\bat \S+ \(|\n\s+at |node_modules|\/src\/|\/dist\/|\.[jt]s:\d+/u;

function expectJsonError(response: RawResponse) {
  expect(response.headers['content-type']).toMatch(/^application\/json/u);
  expect(response.body).not.toMatch(/<html|<!DOCTYPE/iu);
  expect(response.body).not.toMatch(STACK_OR_PATH);
  return JSON.parse(response.body) as Record<string, unknown>;
}

describe.each(backends)('discovery and operational endpoints ($name)', (backend) => {
  const suite = issuerSuite(backend);
  let machine: Credentials;

  beforeAll(async () => {
    machine = await registerClient(suite.issuer.stores.clients, {
      name: 'discovery-machine',
      grants: ['client_credentials'],
      scopes: ['orders:read'],
      resources: [ORDERS],
    });
  });

  describe.each(['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server'])('%s', (metadataPath) => {
    let response: RawResponse;
    let metadata: Metadata;

    beforeAll(async () => {
      response = await request(`${suite.issuer.url}${metadataPath}`);
      metadata = JSON.parse(response.body) as Metadata;
    });

    it('when fetched, answers 200 JSON naming this issuer (RFC 8414, S11)', () => {
      expect(response.status).toBe(200);
      expect(response.headers['content-type']).toMatch(/^application\/json/u);
      expect(metadata.issuer).toBe(suite.issuer.issuer);
    });

    it('when read, every endpoint lives under the issuer', () => {
      expect({
        authorization_endpoint: metadata['authorization_endpoint'],
        token_endpoint: metadata['token_endpoint'],
        jwks_uri: metadata['jwks_uri'],
        introspection_endpoint: metadata['introspection_endpoint'],
        revocation_endpoint: metadata['revocation_endpoint'],
        userinfo_endpoint: metadata['userinfo_endpoint'],
      }).toEqual({
        authorization_endpoint: `${suite.issuer.issuer}/auth`,
        token_endpoint: `${suite.issuer.issuer}/token`,
        jwks_uri: `${suite.issuer.issuer}/jwks`,
        introspection_endpoint: `${suite.issuer.issuer}/token/introspection`,
        revocation_endpoint: `${suite.issuer.issuer}/token/revocation`,
        userinfo_endpoint: `${suite.issuer.issuer}/me`,
      });
    });

    it('when read, response_types_supported is exactly ["code"]: no implicit or hybrid (S13)', () => {
      expect(metadata['response_types_supported']).toEqual(['code']);
    });

    it('when read, code_challenge_methods_supported is exactly ["S256"]: no plain (S2)', () => {
      expect(metadata['code_challenge_methods_supported']).toEqual(['S256']);
    });

    it('when read, grant_types_supported includes client_credentials', () => {
      expect(metadata['grant_types_supported']).toEqual(expect.arrayContaining(['client_credentials']));
    });

    it('when read, client auth is client_secret_basic and client_secret_post, never client_secret_jwt (K2)', () => {
      const methods = metadata['token_endpoint_auth_methods_supported'];
      expect(methods).toEqual(expect.arrayContaining(['client_secret_basic', 'client_secret_post']));
      expect(methods).not.toContain('client_secret_jwt');
    });

    it('when read, authorization_response_iss_parameter_supported is true (RFC 9207, S11)', () => {
      expect(metadata['authorization_response_iss_parameter_supported']).toBe(true);
    });
  });

  describe('jwks_uri', () => {
    let keys: Record<string, unknown>[];

    beforeAll(async () => {
      const response = await request(`${suite.issuer.url}/jwks`);
      expect(response.status).toBe(200);
      ({ keys } = JSON.parse(response.body) as { keys: Record<string, unknown>[] });
    });

    it('when fetched, every key has only public members: no d, p, q, dp, dq, qi (K3)', () => {
      expect(keys.length).toBeGreaterThan(0);
      for (const key of keys) {
        expect(Object.keys(key).sort()).toEqual(PUBLIC_MEMBERS);
        expect(key).toMatchObject({ kty: 'RSA', alg: 'RS256', use: 'sig' });
      }
    });

    it('when fetched, publishes exactly the key files in KEYS_DIR, by kid, each file mode 0600 (K3)', async () => {
      const files = (await fs.readdir(suite.issuer.config.keysDir)).filter((name) => name.endsWith('.json'));
      expect(files).toHaveLength(1);
      const kids = [];
      for (const name of files) {
        const file = path.join(suite.issuer.config.keysDir, name);
        const stored = JSON.parse(await fs.readFile(file, 'utf8')) as { kid: string; state: string; n: string; e: string };
        expect(name).toBe(`${stored.kid}.json`);
        expect(stored.state).toBe('current');
        expect((await fs.stat(file)).mode & 0o777).toBe(0o600);
        kids.push(stored.kid);
        expect(keys.find((key) => key['kid'] === stored.kid)).toEqual({
          kty: 'RSA',
          kid: stored.kid,
          alg: 'RS256',
          use: 'sig',
          n: stored.n,
          e: stored.e,
        });
      }
      expect(keys.map((key) => key['kid']).sort()).toEqual(kids.sort());
    });
  });

  it('when /healthz is asked, answers 200 {"status":"ok"}', async () => {
    const response = await request(`${suite.issuer.url}/healthz`);
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toMatch(/^application\/json/u);
    expect(JSON.parse(response.body)).toEqual({ status: 'ok' });
  });

  it('when /readyz is asked with the database up, answers 200 {"status":"ready"}', async () => {
    const response = await request(`${suite.issuer.url}/readyz`);
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toMatch(/^application\/json/u);
    expect(JSON.parse(response.body)).toEqual({ status: 'ready' });
  });

  it.each(['GET', 'POST'])('when an unknown path is asked with %s, answers a JSON 404, never an HTML page', async (method) => {
    const response = await request(`${suite.issuer.url}/no/such/thing`, { method });
    expect(response.status).toBe(404);
    expect(expectJsonError(response)).toEqual({ error: 'not_found', error_description: 'no such endpoint' });
  });

  it('when the token endpoint gets a malformed JSON body, answers a JSON error without a stack or path (K4)', async () => {
    const response = await request(`${suite.issuer.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{',
    });
    expect(response.status).toBe(400);
    expect(expectJsonError(response)).toEqual({ error: 'invalid_request', error_description: 'only application/x-www-form-urlencoded request bodies are accepted' });
  });

  it('when the token endpoint gets a form body with broken percent-encoding, answers a JSON error without a stack (K4)', async () => {
    const response = await request(`${suite.issuer.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth(machine.id, machine.secret) },
      body: 'grant_type=client_credentials&scope=%E0%A4%A',
    });
    expect(response.status).toBe(400);
    expect(expectJsonError(response)).toEqual({ error: 'invalid_request', error_description: 'the parameter "scope" has a malformed percent-escape' });
  });

  it('when the token endpoint is asked with GET, answers a JSON 405 or 400 (the endpoint exists: not a 404), never an HTML page', async () => {
    const response = await request(`${suite.issuer.url}/token`);
    // RFC 6749 §3.2: the token endpoint takes POST only; RFC 9110 §15.5.6: a known resource
    // asked with a method it doesn't support is a 405, not "no such endpoint"
    expect(String(response.status)).toMatch(/^(400|405)$/u);
    const body = expectJsonError(response);
    expect(body).toEqual({ error: expect.any(String), error_description: expect.any(String) });
    expect(body['error']).not.toBe('not_found');
  });

  it.each([
    ['the token endpoint', '/token', 'POST', 'json'],
    ['the JWKS', '/jwks', 'GET', 'json'],
    ['the JWKS at its well-known path', '/.well-known/jwks.json', 'GET', 'json'],
    ['OpenID discovery', '/.well-known/openid-configuration', 'GET', 'json'],
    ['RFC 8414 metadata', '/.well-known/oauth-authorization-server', 'GET', 'json'],
    ['introspection', '/token/introspection', 'POST', 'json'],
    ['an unknown path', '/no-such-endpoint', 'GET', 'document'],
    ['the health check (express)', '/healthz', 'GET', 'document'],
    ['the authorization endpoint (a page)', '/auth', 'GET', 'document'],
  ])('%s answers with the security headers, never framed, never X-Powered-By, and without CORS headers for a foreign origin (S8, S9)', async (_name, endpoint, method, kind) => {
    const response = await request(`${suite.issuer.url}${endpoint}?probe=1`, { method, headers: { origin: 'https://evil.example' } });
    expect(response.headers).toMatchObject({
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'cross-origin-resource-policy': 'same-origin',
      'content-security-policy': expect.stringContaining("frame-ancestors 'none'"),
    });
    if (kind === 'json') {
      // a JSON answer is no document: nothing may load from it, and none of a document's policies
      expect(response.headers['content-security-policy']).toBe("default-src 'none'; form-action 'none'; frame-ancestors 'none'");
      expect(response.headers['x-frame-options']).toBe('DENY');
      expect(response.headers['cross-origin-opener-policy']).toBeUndefined();
    } else {
      expect(response.headers['x-frame-options']).toBe('SAMEORIGIN');
      expect(response.headers['cross-origin-opener-policy']).toBe('same-origin');
    }
    expect(response.headers['x-powered-by']).toBeUndefined();
    expect(Object.keys(response.headers).filter((name) => name.startsWith('access-control-'))).toEqual([]);
  });

  it('RFC 8414 metadata is the discovery document for GET and HEAD, and no endpoint for other methods', async () => {
    const openid = await request(`${suite.issuer.url}/.well-known/openid-configuration`);
    const metadata = await request(`${suite.issuer.url}/.well-known/oauth-authorization-server`);
    expect(metadata.status).toBe(200);
    expect(JSON.parse(metadata.body)).toEqual(JSON.parse(openid.body));
    expect((await request(`${suite.issuer.url}/.well-known/oauth-authorization-server`, { method: 'HEAD' })).status).toBe(200);
    // as express routes matched it: any case, an optional trailing slash
    for (const variant of ['/.well-known/oauth-authorization-server/', '/.WELL-KNOWN/OAuth-Authorization-Server']) {
      expect(JSON.parse((await request(`${suite.issuer.url}${variant}`)).body)).toEqual(JSON.parse(openid.body));
    }
    const posted = await request(`${suite.issuer.url}/.well-known/oauth-authorization-server`, { method: 'POST' });
    expect(posted.status).toBe(404);
    expect(expectJsonError(posted)).toEqual({ error: 'not_found', error_description: 'no such endpoint' });
  });

  it('/.well-known/jwks.json is jwks_uri\'s document, with its caching, for GET and HEAD; any other method is refused as there', async () => {
    const discovery = JSON.parse((await request(`${suite.issuer.url}/.well-known/openid-configuration`)).body) as Metadata;
    const jwksUri = String(discovery['jwks_uri']).replace(suite.issuer.issuer, suite.issuer.url);
    const [jwks, alias] = await Promise.all([request(jwksUri), request(`${suite.issuer.url}/.well-known/jwks.json`)]);
    expect(alias.status).toBe(200);
    expect(JSON.parse(alias.body)).toEqual(JSON.parse(jwks.body));
    expect(alias.headers['content-type']).toBe(jwks.headers['content-type']);
    expect(alias.headers['cache-control']).toMatch(/^public, max-age=\d+$/u);
    expect(alias.headers['cache-control']).toBe(jwks.headers['cache-control']);
    const head = await request(`${suite.issuer.url}/.well-known/jwks.json`, { method: 'HEAD' });
    expect({ status: head.status, body: head.body }).toEqual({ status: 200, body: '' });
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const [real, aliased] = await Promise.all([request(jwksUri, { method }), request(`${suite.issuer.url}/.well-known/jwks.json`, { method })]);
      expect(aliased.status).toBe(405);
      expect({ status: aliased.status, allow: aliased.headers['allow'], body: expectJsonError(aliased) }).toEqual({ status: real.status, allow: real.headers['allow'], body: expectJsonError(real) });
    }
  });

  it('when a token request carries no Origin header, it is served normally', async () => {
    const response = await request(`${suite.issuer.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth(machine.id, machine.secret) },
      body: new URLSearchParams({ grant_type: 'client_credentials' }).toString(),
    });
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body)).toEqual({
      access_token: expect.any(String),
      token_type: 'Bearer',
      expires_in: 900,
      scope: 'orders:read',
    });
  });
});
