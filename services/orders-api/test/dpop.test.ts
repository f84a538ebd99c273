import { createServer, request as forward } from 'node:http';
import type { AddressInfo } from 'node:net';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createGuard, DEFAULT_DPOP_ALGORITHMS } from '@sigil/guard';
import { resourceServiceConfig, serve } from '@sigil/resource-kit';
import express from 'express';
import { exportJWK, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import { pino } from 'pino';

import { createClient } from '../../issuer/src/domain/clients.js';
import { backends, type TestDatabase } from '../../issuer/test/support/backends.js';
import { accessTokenHash, dpopKey, dpopProof, type DpopKey, type ProofClaims } from '../../issuer/test/support/dpop.js';
import { basicAuth } from '../../issuer/test/support/http.js';
import { startTestIssuer, type TestIssuer } from '../../issuer/test/support/issuer.js';
import { createOrdersApp } from '../src/app.js';

const ORDERS = 'http://localhost:4001';
const ALGS = DEFAULT_DPOP_ALGORITHMS.join(' ');
const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
const nowSeconds = () => Math.floor(Date.now() / 1000);

/** The challenges RFC 9449 §7.1 answers with, as this service writes them. */
const INVALID_PROOF = `DPoP realm="${ORDERS}", error="invalid_dpop_proof", error_description="a DPoP-bound access token needs the DPoP scheme and a valid DPoP proof of its key for this request", algs="${ALGS}"`;
const INVALID_TOKEN = `DPoP realm="${ORDERS}", error="invalid_token", error_description="the access token or API key is invalid", algs="${ALGS}"`;
const USE_NONCE = `DPoP realm="${ORDERS}", error="use_dpop_nonce", error_description="the DPoP proof must carry the nonce of the DPoP-Nonce header", algs="${ALGS}"`;

interface Credentials {
  id: string;
  secret: string;
}

interface Served {
  url: string;
  close(): Promise<void>;
}

/**
 * A reverse proxy that serves its `target` under `prefix` (`/orders-service/orders` → `/orders`),
 * as a gateway in front of a service does. The target is set once the proxy listens, so that
 * the service can be told the proxy's URL (PUBLIC_URL) before it starts.
 */
async function pathProxy(prefix: string): Promise<Served & { target: string }> {
  const proxy = { target: '' };
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').startsWith(`${prefix}/`) ? (req.url ?? '/').slice(prefix.length) : undefined;
    if (path === undefined || proxy.target === '') {
      res.writeHead(404).end();
      return;
    }
    const upstream = forward(`${proxy.target}${path}`, { method: req.method, headers: { ...req.headers, host: new URL(proxy.target).host } }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(proxy, {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}

describe.each(backends)('orders-api: DPoP-bound tokens, checked locally (RFC 9449; R11, R12, R13) ($name)', (backend) => {
  let database: TestDatabase;
  let issuer: TestIssuer;
  let service: Served;
  let strict: Served;
  let proxy: Served & { target: string };
  let behindProxy: Served;
  let whoami: Served;
  let machine: Credentials;
  let reader: Credentials;
  let key: DpopKey;
  let otherKey: DpopKey;

  const token = async (client: Credentials, proofKey?: DpopKey) => {
    const headers: Record<string, string> = { authorization: basicAuth(client.id, client.secret) };
    if (proofKey !== undefined) headers['dpop'] = await dpopProof(proofKey, { htm: 'POST', htu: `${issuer.issuer}/token` });
    const response = await fetch(`${issuer.url}/token`, { method: 'POST', headers, body: new URLSearchParams({ grant_type: 'client_credentials' }) });
    expect(response.status).toBe(200);
    return ((await response.json()) as { access_token: string }).access_token;
  };
  /** A request with `Authorization: <scheme> <token>` and, when given, a `DPoP` header. */
  const call = (url: string, authorization: string, proof?: string, method = 'GET') =>
    fetch(url, {
      method,
      headers: { authorization, ...(proof === undefined ? {} : { dpop: proof }), ...(method === 'POST' ? { 'content-type': 'application/json' } : {}) },
      ...(method === 'POST' ? { body: JSON.stringify({ item: 'widget', quantity: 1 }) } : {}),
    });
  /** A proof for GET `url` with `accessToken`, signed by the bound key unless another is given. */
  const proofFor = (url: string, accessToken: string, claims: Partial<ProofClaims> = {}, signer: DpopKey = key, header: Record<string, unknown> = {}) =>
    dpopProof(signer, { htm: 'GET', htu: url, accessToken, ...claims }, header);
  const created = async (input: Parameters<typeof createClient>[1]) => {
    const { client, clientSecret } = await createClient(issuer.stores.clients, input);
    return { id: client.id, secret: clientSecret ?? '' };
  };
  /** Why the guard refused each request (its log, which the client never sees), latest last. */
  const reasons: string[] = [];
  const logger = { ...pino({ level: 'silent' }), warn: (details: Record<string, unknown>) => void reasons.push(String(details['reason'])), info() {}, error() {} };
  const ordersApp = async (env: Record<string, string>, guard: Parameters<typeof createOrdersApp>[0]['guard'] = {}) => {
    const config = resourceServiceConfig({ ISSUER: issuer.issuer, AUDIENCE: ORDERS, ...env }, { port: 0, audience: ORDERS });
    return serve(createOrdersApp({ config, logger, guard }).app, 0);
  };

  beforeAll(async () => {
    database = await backend.create();
    issuer = await startTestIssuer(database);
    [key, otherKey] = await Promise.all([dpopKey('ES256'), dpopKey('ES256')]);
    await created({ name: 'orders-api', scopes: ['orders:read', 'orders:write'], resources: [ORDERS] });
    machine = await created({ name: 'fulfilment', grants: ['client_credentials'], scopes: ['orders:read', 'orders:write'], resources: [ORDERS] });
    reader = await created({ name: 'dashboard', grants: ['client_credentials'], scopes: ['orders:read'], resources: [ORDERS] });
    service = await ordersApp({});
    strict = await ordersApp({}, { dpop: { nonces: true } });
    proxy = await pathProxy('/orders-service');
    behindProxy = await ordersApp({ PUBLIC_URL: `${proxy.url}/orders-service` });
    proxy.target = behindProxy.url;
    const guard = createGuard({ issuer: issuer.issuer, audience: ORDERS });
    const app = express();
    app.get('/me', guard.requireAuth(), (req, res) => {
      res.json(req.auth);
    });
    whoami = await serve(app, 0);
  });

  afterAll(async () => {
    for (const served of [service, strict, behindProxy, proxy, whoami]) await served?.close();
    await issuer?.close();
    await database?.drop();
  });

  it('when a DPoP-bound token comes with the DPoP scheme and a valid proof, it passes, every time with a fresh proof (its token cached or not)', async () => {
    const jwt = await token(machine, key);
    const url = `${service.url}/orders`;
    for (let i = 0; i < 3; i += 1) {
      const response = await call(url, `DPoP ${jwt}`, await proofFor(url, jwt));
      expect(response.status).toBe(200);
    }
    const placed = await call(url, `DPoP ${jwt}`, await proofFor(url, jwt, { htm: 'POST' }), 'POST');
    expect(placed.status).toBe(201);
  });

  it('when the principal is read, it says the caller proved its key: confirmation.jkt is the key thumbprint', async () => {
    const jwt = await token(machine, key);
    const url = `${whoami.url}/me`;
    const response = await call(url, `DPoP ${jwt}`, await proofFor(url, jwt));
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ kind: 'client', sub: machine.id, confirmation: { jkt: key.thumbprint } });
    // a bearer token's principal has none
    const bearer = await call(url, `Bearer ${await token(machine)}`);
    expect(await bearer.json()).not.toHaveProperty('confirmation');
  });

  it('when a real client (openid-client) calls with its DPoP handle, it passes', async () => {
    const config = await oidc.discovery(new URL(issuer.issuer), machine.id, machine.secret, undefined, { execute: [oidc.allowInsecureRequests] });
    const DPoP = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair('ES256'));
    const { access_token: jwt } = await oidc.clientCredentialsGrant(config, {}, { DPoP });
    const response = await oidc.fetchProtectedResource(config, jwt, new URL(`${service.url}/orders`), 'GET', undefined, undefined, { DPoP });
    expect(response.status).toBe(200);
  });

  /** Each attack: what is sent (scheme, token, proof), the exact answer, and the reason the guard logs (so it is refused for that reason). */
  const attacks: [string, () => Promise<{ authorization: string; proof?: string }>, string, RegExp][] = [
    ['no proof (the DPoP scheme without a DPoP header)', async () => ({ authorization: `DPoP ${await token(machine, key)}` }), INVALID_PROOF, /no DPoP proof/u],
    ['a proof for another method (htm POST for a GET)', async () => bound({ htm: 'POST' }), INVALID_PROOF, /^htm "POST" is not the request method GET$/u],
    ['a proof for another URL (htu of another path)', async () => bound({ htu: `${service.url}/orders/admin/stats` }), INVALID_PROOF, /^htu .* is not the request URL/u],
    ['a proof for another host (htu of another origin)', async () => bound({ htu: 'http://evil.example/orders' }), INVALID_PROOF, /^htu "http:\/\/evil.example\/orders" is not/u],
    ['a stale proof (iat 2 minutes ago; the window is 60 s)', async () => bound({ iat: nowSeconds() - 120 }), INVALID_PROOF, /^iat is 1[12]\d s old \(at most 60 s\)$/u],
    ['a proof from the future (iat in a minute; 5 s of skew)', async () => bound({ iat: nowSeconds() + 60 }), INVALID_PROOF, /^iat is [56]\d s in the future \(at most 5 s\)$/u],
    ['a proof for another access token (ath of another token)', async () => bound({ override: { ath: accessTokenHash('another token') } }), INVALID_PROOF, /^ath is not the hash/u],
    ['a proof without ath', async () => bound({ override: { ath: undefined } }), INVALID_PROOF, /^ath is not the hash/u],
    ['a proof without jti', async () => bound({ override: { jti: undefined } }), INVALID_PROOF, /no usable jti/u],
    ['a valid proof by another key than cnf.jkt', async () => bound({}, otherKey), INVALID_PROOF, /another key than the token's cnf.jkt/u],
    ...(['', 'c2ln'] as const).map((signature): (typeof attacks)[number] => [
      `a proof with alg none (signature "${signature}")`,
      async () => {
        const jwt = await token(machine, key);
        const url = `${service.url}/orders`;
        const proof = `${b64({ alg: 'none', typ: 'dpop+jwt', jwk: key.publicJwk })}.${b64({ htm: 'GET', htu: url, iat: nowSeconds(), jti: 'none-1', ath: accessTokenHash(jwt) })}.${signature}`;
        return { authorization: `DPoP ${jwt}`, proof };
      },
      INVALID_PROOF,
      signature === '' ? /not one compact JWS/u : /^alg "none" is not one of/u,
    ]),
    [
      'a proof signed with HS256',
      async () => {
        const jwt = await token(machine, key);
        const url = `${service.url}/orders`;
        const proof = await new SignJWT({ htm: 'GET', htu: url, iat: nowSeconds(), jti: 'hs-1', ath: accessTokenHash(jwt) })
          .setProtectedHeader({ alg: 'HS256', typ: 'dpop+jwt', jwk: key.publicJwk })
          .sign(new TextEncoder().encode(JSON.stringify(key.publicJwk)));
        return { authorization: `DPoP ${jwt}`, proof };
      },
      INVALID_PROOF,
      /^alg "HS256" is not one of/u,
    ],
    ['a proof carrying the private key in its header (jwk with d)', async () => bound({}, key, { jwk: await exportJWK(key.privateKey) }), INVALID_PROOF, /private or symmetric member "d"/u],
    ['a proof with another typ (JWT)', async () => bound({}, key, { typ: 'JWT' }), INVALID_PROOF, /^typ "JWT" is not dpop\+jwt$/u],
    [
      'two proofs in the DPoP header',
      async () => {
        const { authorization, proof } = await bound();
        return { authorization, proof: `${proof}, ${proof}` };
      },
      INVALID_PROOF,
      /not one compact JWS/u,
    ],
    ['the DPoP-bound token sent as Bearer (a downgrade, RFC 9449 §7.2)', async () => ({ authorization: `Bearer ${await token(machine, key)}` }), INVALID_PROOF, /Bearer scheme/u],
    [
      'the DPoP-bound token sent as Bearer with a valid proof beside it',
      async () => {
        const { authorization, proof } = await bound();
        return { authorization: authorization.replace(/^DPoP/u, 'Bearer'), ...(proof === undefined ? {} : { proof }) };
      },
      INVALID_PROOF,
      /Bearer scheme/u,
    ],
    [
      'the DPoP scheme with a token that is not DPoP-bound (and a proof for it)',
      async () => {
        const jwt = await token(machine);
        return { authorization: `DPoP ${jwt}`, proof: await proofFor(`${service.url}/orders`, jwt) };
      },
      INVALID_TOKEN,
      /not DPoP-bound sent with the DPoP scheme/u,
    ],
    [
      'the DPoP scheme with a tampered token',
      async () => {
        const jwt = await token(machine, key);
        const [header, , signature] = jwt.split('.');
        const forged = `${header}.${b64({ sub: 'x' })}.${signature}`;
        return { authorization: `DPoP ${forged}`, proof: await proofFor(`${service.url}/orders`, forged) };
      },
      INVALID_TOKEN,
      /ERR_JWS_SIGNATURE_VERIFICATION_FAILED/u,
    ],
  ];

  /** A DPoP-bound token and a proof for GET /orders, with what an attack changes. */
  async function bound(claims: Partial<ProofClaims> = {}, signer: DpopKey = key, header: Record<string, unknown> = {}) {
    const jwt = await token(machine, key);
    return { authorization: `DPoP ${jwt}`, proof: await proofFor(`${service.url}/orders`, jwt, claims, signer, header) };
  }

  it.each(attacks)('when the request carries %s, answers 401 with the exact DPoP challenge', async (_name, make, challenge, reason) => {
    const { authorization, proof } = await make();
    const response = await call(`${service.url}/orders`, authorization, proof);
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe(challenge);
    const body = (await response.json()) as { error: string };
    expect(body.error).toBe(challenge === INVALID_TOKEN ? 'invalid_token' : 'invalid_dpop_proof');
    expect(reasons.at(-1)).toMatch(reason);
  });

  it('when a proof is replayed, the second request is refused (invalid_dpop_proof), also with the token served from the verified-token cache', async () => {
    const jwt = await token(machine, key);
    const url = `${service.url}/orders`;
    const proof = await proofFor(url, jwt);
    expect((await call(url, `DPoP ${jwt}`, proof)).status).toBe(200);
    const replayed = await call(url, `DPoP ${jwt}`, proof);
    expect(replayed.status).toBe(401);
    expect(replayed.headers.get('www-authenticate')).toBe(INVALID_PROOF);
  });

  it('when the same proof arrives several times at once, exactly one request passes', async () => {
    const jwt = await token(machine, key);
    const url = `${service.url}/orders`;
    const proof = await proofFor(url, jwt);
    const statuses = await Promise.all(Array.from({ length: 5 }, async () => (await call(url, `DPoP ${jwt}`, proof)).status));
    expect(statuses.sort()).toEqual([200, 401, 401, 401, 401]);
  });

  it('when a DPoP-bound token that was cached is then sent as Bearer, it is refused: the cache never turns it into a bearer token', async () => {
    const jwt = await token(machine, key);
    const url = `${service.url}/orders`;
    expect((await call(url, `DPoP ${jwt}`, await proofFor(url, jwt))).status).toBe(200);
    for (let i = 0; i < 2; i += 1) {
      const response = await call(url, `Bearer ${jwt}`);
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe(INVALID_PROOF);
    }
  });

  it('when a DPoP-bound token lacks the route scope, answers 403 insufficient_scope with the DPoP challenge', async () => {
    const jwt = await token(reader, key);
    const url = `${service.url}/orders`;
    const response = await call(url, `DPoP ${jwt}`, await proofFor(url, jwt, { htm: 'POST' }), 'POST');
    expect(response.status).toBe(403);
    expect(response.headers.get('www-authenticate')).toBe(
      `DPoP realm="${ORDERS}", error="insufficient_scope", error_description="requires scope orders:write", scope="orders:write", algs="${ALGS}"`,
    );
  });

  it('when no credential is sent, the challenge stays Bearer; a bearer token still works beside DPoP', async () => {
    const none = await fetch(`${service.url}/orders`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe(`Bearer realm="${ORDERS}"`);
    expect((await call(`${service.url}/orders`, `Bearer ${await token(machine)}`)).status).toBe(200);
  });

  it('when the service asks for nonces, a first proof without one gets 401 use_dpop_nonce and a DPoP-Nonce; the retry with it passes and gets the nonce again', async () => {
    const jwt = await token(machine, key);
    const url = `${strict.url}/orders`;
    const first = await call(url, `DPoP ${jwt}`, await proofFor(url, jwt));
    expect(first.status).toBe(401);
    expect(first.headers.get('www-authenticate')).toBe(USE_NONCE);
    expect(await first.json()).toEqual({ error: 'use_dpop_nonce', error_description: 'the DPoP proof must carry the nonce of the DPoP-Nonce header' });
    const nonce = first.headers.get('dpop-nonce') ?? '';
    expect(nonce).toMatch(/^[A-Za-z0-9_-]{43}$/u);
    const retried = await call(url, `DPoP ${jwt}`, await proofFor(url, jwt, { nonce }));
    expect(retried.status).toBe(200);
    expect(retried.headers.get('dpop-nonce')).toBe(nonce);
    // a nonce it did not hand out
    const madeUp = await call(url, `DPoP ${jwt}`, await proofFor(url, jwt, { nonce: 'A'.repeat(43) }));
    expect(madeUp.status).toBe(401);
    expect(madeUp.headers.get('www-authenticate')).toBe(USE_NONCE);
    // openid-client retries by itself with the nonce it is given
    const config = await oidc.discovery(new URL(issuer.issuer), machine.id, machine.secret, undefined, { execute: [oidc.allowInsecureRequests] });
    const DPoP = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair('ES256'));
    const { access_token: clientJwt } = await oidc.clientCredentialsGrant(config, {}, { DPoP });
    expect((await oidc.fetchProtectedResource(config, clientJwt, new URL(url), 'GET', undefined, undefined, { DPoP })).status).toBe(200);
  });

  it('when the service sits behind a proxy under a path (PUBLIC_URL), a proof for the public URL passes through it; one for the service\'s own address is refused', async () => {
    const jwt = await token(machine, key);
    const publicUrl = `${proxy.url}/orders-service/orders`;
    expect((await call(publicUrl, `DPoP ${jwt}`, await proofFor(publicUrl, jwt))).status).toBe(200);
    const internal = await call(publicUrl, `DPoP ${jwt}`, await proofFor(`${behindProxy.url}/orders`, jwt));
    expect(internal.status).toBe(401);
    expect(internal.headers.get('www-authenticate')).toBe(INVALID_PROOF);
    // straight to the service, a proof for its own address: still not the public URL
    const direct = await call(`${behindProxy.url}/orders`, `DPoP ${jwt}`, await proofFor(`${behindProxy.url}/orders`, jwt));
    expect(direct.status).toBe(401);
  });
});
