import { beforeAll, describe, expect, it } from '@jest/globals';

import { backends } from '../support/backends.js';
import { basicAuth, corsHeaderNames, request, type RawResponse } from '../support/http.js';
import { issuerSuite, type TestIssuer } from '../support/issuer.js';
import { registerClient, type Credentials } from '../support/oauth.js';

const ALLOWED = 'https://app.example.com';
const EVIL = 'https://evil.example.com';
const ORDERS = 'http://localhost:4001';
const METADATA_PATHS = ['/jwks', '/.well-known/jwks.json', '/.well-known/openid-configuration', '/.well-known/oauth-authorization-server'];

interface Clients {
  machine: Credentials;
  spa: { id: string };
}

async function registerClients(issuer: TestIssuer): Promise<Clients> {
  const machine = await registerClient(issuer.stores.clients, {
    name: 'cors-machine',
    grants: ['client_credentials'],
    scopes: ['orders:read'],
    resources: [ORDERS],
  });
  const spa = await registerClient(issuer.stores.clients, {
    name: 'cors-spa',
    grants: ['authorization_code'],
    scopes: ['orders:read'],
    redirectUris: [`${ALLOWED}/callback`],
    resources: [ORDERS],
    public: true,
  });
  return { machine, spa: { id: spa.id } };
}

const preflight = (issuer: TestIssuer, path: string, origin: string) =>
  request(`${issuer.url}${path}`, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
  });

const clientCredentials = (issuer: TestIssuer, clients: Clients, origin?: string) =>
  request(`${issuer.url}/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: basicAuth(clients.machine.id, clients.machine.secret),
      ...(origin === undefined ? {} : { origin }),
    },
    body: new URLSearchParams({ grant_type: 'client_credentials' }).toString(),
  });

const authorization = (issuer: TestIssuer, clients: Clients, origin: string) =>
  request(
    `${issuer.url}/auth?${new URLSearchParams({
      client_id: clients.spa.id,
      response_type: 'code',
      redirect_uri: `${ALLOWED}/callback`,
      scope: 'openid',
      state: 'state-1',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
    }).toString()}`,
    { headers: { origin } },
  );

const tokenBody = {
  access_token: expect.any(String),
  token_type: 'Bearer',
  expires_in: 900,
  scope: 'orders:read',
};

function expectNoCors(response: RawResponse) {
  expect(corsHeaderNames(response)).toEqual([]);
}

describe.each(backends)('CORS (S8) ($name)', (backend) => {
  describe('when CORS_ORIGINS allows https://app.example.com', () => {
    const suite = issuerSuite(backend, { CORS_ORIGINS: ALLOWED });
    let clients: Clients;

    beforeAll(async () => {
      clients = await registerClients(suite.issuer);
    });

    it.each(METADATA_PATHS)('when the allowed origin GETs %s, the answer carries its Access-Control-Allow-Origin', async (path) => {
      const response = await request(`${suite.issuer.url}${path}`, { headers: { origin: ALLOWED } });
      expect(response.status).toBe(200);
      expect(response.headers['access-control-allow-origin']).toBe(ALLOWED);
      expect(response.headers['vary']).toMatch(/\bOrigin\b/u);
    });

    it('when the allowed origin preflights POST /token, answers 204 allowing that origin and POST', async () => {
      const response = await preflight(suite.issuer, '/token', ALLOWED);
      expect(response.status).toBe(204);
      expect(response.headers['access-control-allow-origin']).toBe(ALLOWED);
      expect(response.headers['access-control-allow-methods']?.split(',')).toContain('POST');
      expect(response.body).toBe('');
    });

    it('when the allowed origin asks for a client-credentials token, it is issued with its Access-Control-Allow-Origin', async () => {
      const response = await clientCredentials(suite.issuer, clients, ALLOWED);
      expect(response.status).toBe(200);
      expect(JSON.parse(response.body)).toEqual(tokenBody);
      expect(response.headers['access-control-allow-origin']).toBe(ALLOWED);
    });

    it.each(['/.well-known/OAuth-Authorization-Server', '/.well-known/oauth-authorization-server/'])(
      'when the allowed origin GETs the RFC 8414 metadata as %s (served, but not a CORS path), the answer carries no Access-Control-* header',
      async (path) => {
        const response = await request(`${suite.issuer.url}${path}`, { headers: { origin: ALLOWED } });
        expect(response.status).toBe(200);
        expect(corsHeaderNames(response)).toEqual([]);
      },
    );

    it.each(METADATA_PATHS)('when a disallowed origin GETs %s, the answer carries no Access-Control-* header', async (path) => {
      const response = await request(`${suite.issuer.url}${path}`, { headers: { origin: EVIL } });
      expect(response.status).toBe(200);
      expectNoCors(response);
    });

    it('when a disallowed origin preflights POST /token, the answer carries no Access-Control-* header', async () => {
      const response = await preflight(suite.issuer, '/token', EVIL);
      expect(response.status).toBe(204);
      expectNoCors(response);
    });

    it('when a disallowed origin posts a token request, the answer carries no Access-Control-* header', async () => {
      const response = await clientCredentials(suite.issuer, clients, EVIL);
      expectNoCors(response);
      // the engine's clientBasedCORS refuses the cross-origin call outright
      expect(response.status).toBe(400);
      expect(JSON.parse(response.body)).toEqual({
        error: 'invalid_request',
        error_description: `origin ${EVIL} not allowed for client: ${clients.machine.id}`,
      });
    });

    it('when the allowed origin calls the authorization endpoint, the answer carries no Access-Control-* header', async () => {
      const response = await authorization(suite.issuer, clients, ALLOWED);
      // the request itself is valid: the engine sends the browser on to the login interaction
      expect(response.status).toBe(303);
      expect(response.headers['location']).toMatch(/^\/interaction\/[A-Za-z0-9_-]+$/u);
      expectNoCors(response);
    });

    it('when the allowed origin preflights the authorization endpoint, the answer carries no Access-Control-* header', async () => {
      const response = await preflight(suite.issuer, '/auth', ALLOWED);
      expect(response.status).toBe(204);
      expectNoCors(response);
    });
  });

  describe('when CORS_ORIGINS is not set', () => {
    const suite = issuerSuite(backend);
    let clients: Clients;

    beforeAll(async () => {
      clients = await registerClients(suite.issuer);
    });

    it.each(METADATA_PATHS)('when an origin GETs %s, the answer carries no Access-Control-* header', async (path) => {
      const response = await request(`${suite.issuer.url}${path}`, { headers: { origin: ALLOWED } });
      expect(response.status).toBe(200);
      expectNoCors(response);
    });

    it('when an origin preflights POST /token, the answer carries no Access-Control-* header', async () => {
      const response = await preflight(suite.issuer, '/token', ALLOWED);
      expect(response.status).toBe(204);
      expectNoCors(response);
    });

    it('when an origin posts a token request, the answer carries no Access-Control-* header', async () => {
      const response = await clientCredentials(suite.issuer, clients, ALLOWED);
      expectNoCors(response);
      expect(response.status).toBe(400);
      expect(JSON.parse(response.body)).toEqual({
        error: 'invalid_request',
        error_description: `origin ${ALLOWED} not allowed for client: ${clients.machine.id}`,
      });
    });

    it('when an origin calls the authorization endpoint, the answer carries no Access-Control-* header', async () => {
      const response = await authorization(suite.issuer, clients, ALLOWED);
      expect(response.status).toBe(303);
      expectNoCors(response);
    });

    it('when a token request carries no Origin, the token is issued', async () => {
      const response = await clientCredentials(suite.issuer, clients);
      expect(response.status).toBe(200);
      expect(JSON.parse(response.body)).toEqual(tokenBody);
    });
  });
});
