import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';

import { createGuard, IssuerMetadataRefused, VerifierUnavailable, type Guard } from '../src/index.js';
import { accessToken, AUDIENCE, guardedApp, newApiKey, signingKey, type SigningKey } from './support.js';

const METADATA_PATH = '/.well-known/oauth-authorization-server';

/** The metadata of the issuer at `url`, every endpoint on its own origin. */
const own = (url: string) => ({ issuer: url, jwks_uri: `${url}/jwks`, introspection_endpoint: `${url}/token/introspection` });

/**
 * A stand-in for the issuer on a loopback port: its metadata (or status) is whatever the test
 * sets, its JWKS the test's key, and it records every path asked and every Authorization sent.
 */
class FakeIssuer {
  status = 200;
  metadata: (issuer: string) => unknown = own;
  headers: Record<string, string> = {};
  keys: object[] = [];
  readonly asked: string[] = [];
  readonly authorizations: string[] = [];
  #server: Server | undefined;
  #port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  async start(port = 0): Promise<void> {
    this.#server = createServer((req, res) => this.#answer(req, res));
    await new Promise<void>((resolve) => this.#server?.listen(port, '127.0.0.1', resolve));
    this.#port = (this.#server.address() as AddressInfo).port;
  }

  #answer(req: IncomingMessage, res: ServerResponse): void {
    this.asked.push(req.url ?? '');
    if (req.headers.authorization !== undefined) this.authorizations.push(req.headers.authorization);
    req.resume();
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json', ...this.headers });
      res.end(JSON.stringify(body));
    };
    if (req.url === METADATA_PATH) return json(this.status, this.status === 200 ? this.metadata(this.url) : { error: 'nope' });
    if (req.url === '/jwks') return json(200, { keys: this.keys });
    if (req.url === '/token/introspection') return json(200, { active: true, token_type: 'api_key', sub: 'key-1', aud: [AUDIENCE], scope: 'orders:read', roles: [] });
    return json(404, {});
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** What the guard logged, as (message, details). */
function memoryLogger() {
  const lines: { message: string; details: Record<string, unknown> }[] = [];
  return { lines, warn: (details: Record<string, unknown>, message: string) => void lines.push({ message, details }) };
}

describe('guard: the issuer metadata it will use (its issuer, its origin)', () => {
  const issuer = new FakeIssuer();
  const elsewhere = new FakeIssuer();
  let key: SigningKey;

  beforeAll(async () => {
    key = await signingKey('issuer-key');
    await issuer.start();
    await elsewhere.start();
    issuer.keys = [key.publicJwk];
    elsewhere.keys = [key.publicJwk];
  });

  afterAll(async () => {
    await issuer.stop();
    await elsewhere.stop();
  });

  beforeEach(() => {
    issuer.status = 200;
    issuer.headers = {};
    issuer.metadata = own;
    for (const server of [issuer, elsewhere]) {
      server.asked.length = 0;
      server.authorizations.length = 0;
    }
  });

  const guardFor = (logger = memoryLogger()): Guard =>
    createGuard({ issuer: issuer.url, audience: AUDIENCE, logger, apiKeys: { clientId: 'orders-api', clientSecret: 'guard-secret' } });

  it('when the metadata is the issuer’s own, ready() resolves and tokens verify with keys from its jwks_uri', async () => {
    const guard = guardFor();
    await expect(guard.ready()).resolves.toBeUndefined();
    const principal = await guard.verifier.verify(await accessToken(key, { iss: issuer.url }));
    expect(principal.issuer).toBe(issuer.url);
    expect(issuer.asked).toEqual([METADATA_PATH, '/jwks']);
  });

  describe.each([
    ['names another issuer', (url: string) => ({ issuer: url.replace('127.0.0.1', 'localhost'), jwks_uri: `${url}/jwks` }), /names issuer "http:\/\/localhost:\d+", not the configured "http:\/\/127\.0\.0\.1:\d+"/u],
    ['names the issuer with a trailing slash', (url: string) => ({ issuer: `${url}/`, jwks_uri: `${url}/jwks` }), /names issuer/u],
    ['puts jwks_uri on another origin', (url: string) => ({ ...own(url), jwks_uri: `${elsewhere.url}/jwks` }), /jwks_uri .* is not on the issuer's origin/u],
    ['puts jwks_uri on another scheme', (url: string) => ({ ...own(url), jwks_uri: `${url.replace('http:', 'https:')}/jwks` }), /jwks_uri .* is not on the issuer's origin/u],
    ['has no jwks_uri', (url: string) => ({ ...own(url), jwks_uri: undefined }), /jwks_uri undefined is not on the issuer's origin/u],
    [
      'puts introspection_endpoint on another origin',
      (url: string) => ({ issuer: url, jwks_uri: `${url}/jwks`, introspection_endpoint: `${elsewhere.url}/token/introspection` }),
      /introspection_endpoint .* is not on the issuer's origin/u,
    ],
    ['has no introspection_endpoint although API keys need one', (url: string) => ({ issuer: url, jwks_uri: `${url}/jwks` }), /no introspection_endpoint, which API keys need/u],
  ])('when the metadata %s', (_name, metadata, reason) => {
    it('ready() refuses it as a configuration error, nothing is fetched or sent elsewhere, requests get 503, and it is logged once', async () => {
      issuer.metadata = metadata;
      const logger = memoryLogger();
      const guard = guardFor(logger);
      const refusal = await guard.ready().catch((error: unknown) => error);
      expect(refusal).toBeInstanceOf(IssuerMetadataRefused);
      expect((refusal as IssuerMetadataRefused).reason).toMatch(reason);

      const service = await guardedApp({ issuer: issuer.url, audience: AUDIENCE, logger, apiKeys: { clientId: 'orders-api', clientSecret: 'guard-secret' } });
      try {
        const token = await accessToken(key, { iss: issuer.url });
        for (let round = 0; round < 3; round += 1) {
          expect((await fetch(`${service.url}/me`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(503);
          expect((await fetch(`${service.url}/me`, { headers: { 'x-api-key': newApiKey() } })).status).toBe(503);
        }
      } finally {
        await service.close();
      }
      expect(elsewhere.asked).toEqual([]);
      expect(elsewhere.authorizations).toEqual([]);
      expect(issuer.asked.every((path) => path === METADATA_PATH)).toBe(true);
      const refusedLines = logger.lines.filter((line) => line.message.startsWith('issuer metadata refused'));
      // once for the guard of ready(), once for the service's: never once per request
      expect(refusedLines.length).toBe(2);
    });
  });

  it.each([
    [404, /answered 404: no authorization server metadata there/u],
    [302, /redirects to https:\/\/auth\.example\.com\/.*ISSUER must be the issuer's own identifier/u],
  ])('when the metadata URL answers %i, ready() refuses it as a configuration error', async (status, reason) => {
    issuer.status = status;
    issuer.headers = status === 302 ? { location: `https://auth.example.com${METADATA_PATH}` } : {};
    const refusal = await guardFor().ready().catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(IssuerMetadataRefused);
    expect((refusal as IssuerMetadataRefused).reason).toMatch(reason);
  });

  it.each([503, 429])('when the metadata URL answers %i, ready() reports an outage (not a refusal), and succeeds once the issuer recovers', async (status) => {
    issuer.status = status;
    const guard = guardFor();
    const outage = await guard.ready().catch((error: unknown) => error);
    expect(outage).toBeInstanceOf(VerifierUnavailable);
    expect(outage).not.toBeInstanceOf(IssuerMetadataRefused);
    issuer.status = 200;
    await expect(guard.ready()).resolves.toBeUndefined();
  });

  describe('when the issuer is not listening', () => {
    const later = new FakeIssuer();
    let port: number;

    beforeAll(async () => {
      await later.start();
      port = Number(new URL(later.url).port);
      await later.stop();
    });

    afterEach(async () => {
      await later.stop();
    });

    it('ready() reports an outage (not a refusal), then succeeds once the issuer listens', async () => {
      const guard = createGuard({ issuer: `http://127.0.0.1:${port}`, audience: AUDIENCE });
      const outage = await guard.ready().catch((error: unknown) => error);
      expect(outage).toBeInstanceOf(VerifierUnavailable);
      expect(outage).not.toBeInstanceOf(IssuerMetadataRefused);
      await later.start(port);
      await expect(guard.ready()).resolves.toBeUndefined();
    });
  });

  it('when every endpoint is given explicitly, ready() asks the issuer nothing', async () => {
    const guard = createGuard({
      issuer: issuer.url,
      audience: AUDIENCE,
      jwksUri: `${issuer.url}/jwks`,
      apiKeys: { clientId: 'orders-api', clientSecret: 'guard-secret', introspectionEndpoint: `${issuer.url}/token/introspection` },
    });
    await expect(guard.ready()).resolves.toBeUndefined();
    expect(issuer.asked).toEqual([]);
  });
});
