import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';

import { createApiKey } from '../../issuer/src/domain/api-keys.js';
import { createClient } from '../../issuer/src/domain/clients.js';
import { embedded } from '../../issuer/test/support/backends.js';
import { dpopKey, dpopProof, type DpopKey } from '../../issuer/test/support/dpop.js';
import { basicAuth, request, type RawResponse } from '../../issuer/test/support/http.js';
import { freePort, issuerSuite } from '../../issuer/test/support/issuer.js';
import { createCoreGuard, fastifyGuard } from '../src/fastify.js';
import { createGuard, type GuardOptions } from '../src/index.js';
import { listen } from './support.js';

const ORDERS = 'http://localhost:4001';
const REPORTS = 'http://localhost:4002';

interface Served {
  readonly url: string;
  close(): Promise<void>;
}

/** The same routes behind the express middleware and behind the Fastify plugin, each over its own guard of `options`. */
async function bothApps(options: GuardOptions): Promise<{ express: Served; fastify: Served; close(): Promise<void> }> {
  const expressGuard = createGuard(options);
  const app = express();
  app.get('/me', expressGuard.requireAuth(), (req, res) => {
    res.json({ sub: req.auth?.sub, kind: req.auth?.kind, scopes: req.auth?.scopes });
  });
  app.get('/orders', expressGuard.requireAuth({ apiKeyInQuery: true }), expressGuard.requireScope('orders:read'), (_req, res) => {
    res.json({ orders: [] });
  });
  app.get('/write', expressGuard.requireScope('orders:write'), (_req, res) => {
    res.json({ written: true });
  });
  app.get('/admin', expressGuard.requireRole('admin'), (_req, res) => {
    res.json({ admin: true });
  });
  const servedExpress = await listen(app);

  const coreGuard = createCoreGuard(options);
  const auth = fastifyGuard(coreGuard);
  const fastify: FastifyInstance = Fastify();
  await fastify.register(auth.plugin);
  fastify.get('/me', { preHandler: auth.requireAuth() }, async (request) => ({ sub: request.auth?.sub, kind: request.auth?.kind, scopes: request.auth?.scopes }));
  fastify.get('/orders', { preHandler: [auth.requireAuth({ apiKeyInQuery: true }), auth.requireScope('orders:read')] }, async () => ({ orders: [] }));
  fastify.get('/write', { preHandler: auth.requireScope('orders:write') }, async () => ({ written: true }));
  fastify.get('/admin', { preHandler: auth.requireRole('admin') }, async () => ({ admin: true }));
  const address = await fastify.listen({ port: 0, host: '127.0.0.1' });
  const servedFastify = { url: address, close: () => fastify.close() };

  return {
    express: servedExpress,
    fastify: servedFastify,
    close: async () => {
      expressGuard.close();
      coreGuard.close();
      await Promise.all([servedExpress.close(), servedFastify.close()]);
    },
  };
}

/** The parts of an answer the guard decides: status, body bytes, and its headers (framework headers such as Date, ETag or Connection aside). */
const guardAnswer = (response: RawResponse) => ({
  status: response.status,
  body: response.body,
  'www-authenticate': response.headers['www-authenticate'],
  'retry-after': response.headers['retry-after'],
  'cache-control': response.headers['cache-control'],
  'dpop-nonce': response.headers['dpop-nonce'],
  'content-type': response.headers['content-type'],
});

describe('the Fastify plugin answers as the express middleware does, behind a real issuer', () => {
  const suite = issuerSuite(embedded);
  let apps: Awaited<ReturnType<typeof bothApps>>;
  let machine: { id: string; secret: string };
  let reader: { id: string; secret: string };
  let apiKey: string;
  let jwksUri: string;
  let key: DpopKey;

  const token = async (client: { id: string; secret: string }, form: Record<string, string> = {}, proofKey?: DpopKey) => {
    const headers: Record<string, string> = { authorization: basicAuth(client.id, client.secret) };
    if (proofKey !== undefined) headers['dpop'] = await dpopProof(proofKey, { htm: 'POST', htu: `${suite.issuer.issuer}/token` });
    const response = await fetch(`${suite.issuer.url}/token`, { method: 'POST', headers, body: new URLSearchParams({ grant_type: 'client_credentials', ...form }) });
    expect(response.status).toBe(200);
    return ((await response.json()) as { access_token: string }).access_token;
  };

  /** Sends the same request to both apps, twice (the full path, then the cached one), and answers what each said. */
  const both = async (target: { express: Served; fastify: Served }, path: string, headers: Record<string, string>) => {
    const answers = [];
    for (let round = 0; round < 2; round += 1) {
      const fromExpress = guardAnswer(await request(`${target.express.url}${path}`, { headers }));
      const fromFastify = guardAnswer(await request(`${target.fastify.url}${path}`, { headers }));
      expect(fromFastify).toEqual(fromExpress);
      answers.push(fromExpress);
    }
    expect(answers[1]).toEqual(answers[0]);
    return answers[0] as ReturnType<typeof guardAnswer>;
  };

  const challenge = (error?: string, description?: string, extra = '') =>
    error === undefined ? `Bearer realm="${ORDERS}"` : `Bearer realm="${ORDERS}", error="${error}", error_description="${description}"${extra}`;
  const INVALID_TOKEN = challenge('invalid_token', 'the access token or API key is invalid');

  beforeAll(async () => {
    const { issuer } = suite;
    const created = async (input: Parameters<typeof createClient>[1]) => {
      const { client, clientSecret } = await createClient(issuer.stores.clients, input);
      return { id: client.id, secret: clientSecret ?? '' };
    };
    machine = await created({ name: 'fulfilment', grants: ['client_credentials'], scopes: ['orders:read', 'orders:write'], roles: ['admin'], resources: [ORDERS, REPORTS] });
    reader = await created({ name: 'dashboard', grants: ['client_credentials'], scopes: ['orders:read'], resources: [ORDERS] });
    const guardClient = await created({ name: 'orders-api', grants: ['client_credentials'], resources: [ORDERS] });
    apiKey = (await createApiKey(issuer.stores.apiKeys, { name: 'ci-bot', resources: [ORDERS], scopes: ['orders:read'], roles: [] })).key;
    jwksUri = ((await (await fetch(`${issuer.url}/.well-known/oauth-authorization-server`)).json()) as { jwks_uri: string }).jwks_uri;
    key = await dpopKey('ES256');
    apps = await bothApps({ issuer: issuer.issuer, audience: ORDERS, apiKeys: { clientId: guardClient.id, clientSecret: guardClient.secret } });
  });

  afterAll(async () => {
    await apps?.close();
  });

  it('lets a valid token through on both, with the same principal (request.auth on Fastify)', async () => {
    const jwt = await token(machine);
    const me = await both(apps, '/me', { authorization: `Bearer ${jwt}` });
    expect(me.status).toBe(200);
    expect(JSON.parse(me.body)).toEqual({ sub: machine.id, kind: 'client', scopes: ['orders:read', 'orders:write'] });
    for (const path of ['/orders', '/write', '/admin']) expect((await both(apps, path, { authorization: `Bearer ${jwt}` })).status).toBe(200);
  });

  it('refuses a request without a credential: 401, a challenge without an error code, no-store, the same JSON body', async () => {
    const answer = await both(apps, '/orders', {});
    expect(answer).toEqual({
      status: 401,
      body: JSON.stringify({ error: 'unauthorized', error_description: 'a bearer token or an API key is required' }),
      'www-authenticate': challenge(),
      'retry-after': undefined,
      'cache-control': 'no-store',
      'dpop-nonce': undefined,
      'content-type': 'application/json; charset=utf-8',
    });
  });

  it.each([
    ['a malformed Authorization header', async () => 'Bearer not a token'],
    ['a bad signature', async () => `Bearer ${(await token(machine)).slice(0, -4)}AAAA`],
    ['a token for another audience', async () => `Bearer ${await token(machine, { resource: REPORTS })}`],
  ])('refuses %s: 401 invalid_token', async (_name, authorization) => {
    const answer = await both(apps, '/orders', { authorization: await authorization() });
    expect(answer.status).toBe(401);
    expect(answer['www-authenticate']).toBe(INVALID_TOKEN);
    expect(JSON.parse(answer.body)).toEqual({ error: 'invalid_token', error_description: 'the access token or API key is invalid' });
  });

  it('refuses a missing scope: 403 insufficient_scope with scope=', async () => {
    const answer = await both(apps, '/write', { authorization: `Bearer ${await token(reader)}` });
    expect(answer.status).toBe(403);
    expect(answer['www-authenticate']).toBe(challenge('insufficient_scope', 'requires scope orders:write', ', scope="orders:write"'));
  });

  it('refuses a missing role: 403 insufficient_scope naming the role', async () => {
    const answer = await both(apps, '/admin', { authorization: `Bearer ${await token(reader)}` });
    expect(answer.status).toBe(403);
    expect(answer['www-authenticate']).toBe(challenge('insufficient_scope', 'requires role admin'));
  });

  it('accepts an API key (X-API-Key and ?api_key= where the route allows it) and refuses an unknown one', async () => {
    expect((await both(apps, '/orders', { 'x-api-key': apiKey })).status).toBe(200);
    expect((await both(apps, `/orders?api_key=${apiKey}`, {})).status).toBe(200);
    expect((await both(apps, '/admin', { 'x-api-key': apiKey }))['www-authenticate']).toBe(challenge('insufficient_scope', 'requires role admin'));
    const unknown = await both(apps, '/orders', { 'x-api-key': `${apiKey.slice(0, -2)}xx` });
    expect(unknown.status).toBe(401);
    expect(unknown['www-authenticate']).toBe(INVALID_TOKEN);
    const two = await both(apps, '/orders', { 'x-api-key': apiKey, authorization: `Bearer ${await token(reader)}` });
    expect(two.status).toBe(400);
  });

  it('refuses a DPoP-bound token sent as Bearer with the DPoP challenge, and lets it through with the DPoP scheme and a proof', async () => {
    const jwt = await token(machine, {}, key);
    const downgraded = await both(apps, '/orders', { authorization: `Bearer ${jwt}` });
    expect(downgraded.status).toBe(401);
    expect(downgraded['www-authenticate']).toMatch(/^DPoP realm="http:\/\/localhost:4001", error="invalid_dpop_proof", .*algs="/u);
    for (const served of [apps.express, apps.fastify]) {
      const url = `${served.url}/orders`;
      const response = await request(url, { headers: { authorization: `DPoP ${jwt}`, dpop: await dpopProof(key, { htm: 'GET', htu: url, accessToken: jwt }) } });
      expect(response.status).toBe(200);
    }
  });

  it('refuses an expired token: 401 invalid_token (a guard whose clock is two hours ahead)', async () => {
    const jwt = await token(machine);
    const late = await bothApps({ issuer: suite.issuer.issuer, audience: ORDERS, now: () => Date.now() + 2 * 3600_000 });
    try {
      const answer = await both(late, '/orders', { authorization: `Bearer ${jwt}` });
      expect(answer.status).toBe(401);
      expect(answer['www-authenticate']).toBe(INVALID_TOKEN);
    } finally {
      await late.close();
    }
  });

  it('refuses a token of another issuer: 401 invalid_token (a guard expecting another iss, with the real JWKS)', async () => {
    const jwt = await token(machine);
    const other = await bothApps({ issuer: 'https://another-issuer.example', audience: ORDERS, jwksUri });
    try {
      const answer = await both(other, '/orders', { authorization: `Bearer ${jwt}` });
      expect(answer.status).toBe(401);
      expect(answer['www-authenticate']).toBe(INVALID_TOKEN);
    } finally {
      await other.close();
    }
  });

  it('answers 503 with Retry-After when the issuer cannot be reached', async () => {
    const jwt = await token(machine);
    const down = await bothApps({ issuer: `http://127.0.0.1:${await freePort()}`, audience: ORDERS });
    try {
      const answer = await both(down, '/orders', { authorization: `Bearer ${jwt}` });
      expect(answer).toMatchObject({ status: 503, 'retry-after': '5', 'www-authenticate': undefined, 'cache-control': 'no-store' });
      expect(JSON.parse(answer.body)).toEqual({ error: 'temporarily_unavailable', error_description: 'the credential cannot be checked right now; retry later' });
    } finally {
      await down.close();
    }
  });

  it('the plain-data API decides the same request the same way, synchronously once the token is cached', async () => {
    const jwt = await token(reader);
    const guard = createCoreGuard({ issuer: suite.issuer.issuer, audience: ORDERS });
    try {
      const request = { method: 'GET', url: '/write', headers: { authorization: `Bearer ${jwt}` } };
      const first = await guard.authenticateRequest(request, { scopes: ['orders:write'] });
      expect(first).toMatchObject({ ok: false, status: 403, body: { error: 'insufficient_scope', error_description: 'requires scope orders:write' } });
      const cached = guard.decide({ ...request, url: '/orders' }, { scopes: ['orders:read'] });
      expect(cached).toMatchObject({ ok: true, principal: { sub: reader.id } });
      expect(guard.stats()).toMatchObject({ requests: { accepted: 2, refused: { ERR_INSUFFICIENT_SCOPE: 1 } }, verifiedTokenCache: { hits: 1, misses: 1 } });
    } finally {
      guard.close();
    }
  });
});
