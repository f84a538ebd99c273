import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';

import { beforeAll, describe, expect, it } from '@jest/globals';

import { PasswordHasher } from '../../src/domain/passwords.js';
import { createUser } from '../../src/domain/users.js';
import { backends } from '../support/backends.js';
import type { RawResponse } from '../support/http.js';
import { issuerSuite, type TestIssuer } from '../support/issuer.js';
import { registerClient, type Credentials } from '../support/oauth.js';

const ORDERS = 'http://localhost:4001';
const CALLBACK = 'http://127.0.0.1:8080/callback';
const PASSWORD = 'correct horse battery staple';
const EVIL = 'evil.example';

/** What a client (or a proxy that passes them through) may claim about the origin it asked for. */
const SPOOFS: readonly (readonly [string, Record<string, string>])[] = [
  ['Host', { host: EVIL }],
  ['X-Forwarded-Host and -Proto', { 'x-forwarded-host': EVIL, 'x-forwarded-proto': 'https' }],
  ['Host, X-Forwarded-Host and -Proto', { host: `${EVIL}:8443`, 'x-forwarded-host': EVIL, 'x-forwarded-proto': 'https', 'x-forwarded-port': '443' }],
];

/**
 * One request to the issuer's own socket with exactly these headers; `target` is sent as the
 * request target as is, so an absolute-form target (`GET http://evil.example/x`) is possible.
 */
function send(issuer: TestIssuer, target: string, { method = 'GET', headers = {}, body }: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<RawResponse> {
  const { hostname, port } = new URL(issuer.url);
  return new Promise((resolve, reject) => {
    const outgoing = http.request(
      { host: hostname, port, path: target, method, agent: false, headers: body === undefined ? headers : { 'content-length': String(Buffer.byteLength(body)), ...headers } },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

/** Every string in a JSON document that is an absolute http(s) URL. */
function urlsIn(value: unknown): string[] {
  if (typeof value === 'string') return /^https?:\/\//u.test(value) ? [value] : [];
  if (Array.isArray(value)) return value.flatMap(urlsIn);
  if (typeof value === 'object' && value !== null) return Object.values(value).flatMap(urlsIn);
  return [];
}

/** The cookies a browser would keep between the steps of the flow (name → value). */
class CookieJar {
  readonly #cookies = new Map<string, string>();
  readonly attributes: string[] = [];

  keep(response: RawResponse): void {
    for (const line of response.headers['set-cookie'] ?? []) {
      this.attributes.push(line);
      const [pair = ''] = line.split(';');
      const equals = pair.indexOf('=');
      this.#cookies.set(pair.slice(0, equals), pair.slice(equals + 1));
    }
  }

  get header(): string {
    return [...this.#cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }
}

describe.each(backends)('endpoints come from ISSUER, never from Host or X-Forwarded-* ($name)', (backend) => {
  describe.each([
    ['TRUST_PROXY unset', {}],
    ['TRUST_PROXY=true', { TRUST_PROXY: 'true' }],
  ])('%s', (_name, env) => {
    const suite = issuerSuite(backend, env);
    let client: Credentials;

    beforeAll(async () => {
      const { issuer } = suite;
      await createUser(issuer.stores.users, { username: 'origin-alice', password: PASSWORD, roles: [] }, new PasswordHasher());
      client = await registerClient(issuer.stores.clients, {
        name: 'Origin Console',
        grants: ['authorization_code', 'refresh_token'],
        scopes: ['openid'],
        redirectUris: [CALLBACK],
        resources: [ORDERS],
        firstParty: true,
      });
    });

    /** A Location the issuer may send: a path on whatever origin was asked, the ISSUER's origin, or the client's own redirect URI. */
    function expectTrustedLocation(location: string | undefined): string {
      expect(location).toEqual(expect.any(String));
      const value = location ?? '';
      if (value.startsWith('/') && !value.startsWith('//')) return value;
      if (value.startsWith(`${CALLBACK}?`)) return value;
      expect(new URL(value).origin).toBe(suite.issuer.issuer);
      return value;
    }

    /** The path and query of a Location, to follow it on the issuer's own socket. */
    const pathOf = (location: string) => {
      const url = new URL(location, suite.issuer.issuer);
      return `${url.pathname}${url.search}`;
    };

    describe.each(SPOOFS)('when a request claims another origin with %s', (_spoof, spoofed) => {
      it.each(['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server'])('%s names every endpoint on the ISSUER origin', async (metadataPath) => {
        const response = await send(suite.issuer, metadataPath, { headers: spoofed });
        expect(response.status).toBe(200);
        expect(response.body).not.toContain(EVIL);
        const metadata = JSON.parse(response.body) as Record<string, unknown>;
        expect(metadata['issuer']).toBe(suite.issuer.issuer);
        const urls = urlsIn(metadata).filter((url) => url !== suite.issuer.issuer);
        expect(urls.length).toBeGreaterThanOrEqual(7);
        for (const url of urls) expect(url.startsWith(`${suite.issuer.issuer}/`)).toBe(true);
      });

      it('every Location of the authorization code flow is on the ISSUER origin or the client redirect URI, and cookies follow ISSUER', async () => {
        const jar = new CookieJar();
        const step = async (target: string, options: { method?: string; body?: string; headers?: Record<string, string> } = {}) => {
          const response = await send(suite.issuer, target, { ...options, headers: { ...spoofed, ...options.headers, ...(jar.header === '' ? {} : { cookie: jar.header }) } });
          jar.keep(response);
          expect(response.body).not.toContain(EVIL);
          return response;
        };
        const verifier = randomBytes(32).toString('base64url');
        const authorization = new URLSearchParams({
          client_id: client.id,
          redirect_uri: CALLBACK,
          response_type: 'code',
          scope: 'openid',
          state: 'origin-state',
          code_challenge: createHash('sha256').update(verifier).digest('base64url'),
          code_challenge_method: 'S256',
        });
        const started = await step(`/auth?${authorization.toString()}`);
        expect(started.status).toBe(303);
        const interaction = expectTrustedLocation(started.headers['location']);

        const page = await step(pathOf(interaction));
        expect(page.status).toBe(200);
        const csrf = /name="csrf" value="([^"]+)"/u.exec(page.body)?.[1] ?? '';
        const signedIn = await step(`${pathOf(interaction)}/login`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ csrf, username: 'origin-alice', password: PASSWORD }).toString(),
        });
        expect(signedIn.status).toBe(303);
        const resume = expectTrustedLocation(signedIn.headers['location']);
        expect(resume.startsWith(`${suite.issuer.issuer}/auth/`)).toBe(true);

        const finished = await step(pathOf(resume));
        expect(finished.status).toBe(303);
        const callback = new URL(expectTrustedLocation(finished.headers['location']));
        expect(callback.searchParams.get('iss')).toBe(suite.issuer.issuer);
        expect(callback.searchParams.get('code')).toEqual(expect.any(String));

        // an http ISSUER: no Secure cookie, whatever X-Forwarded-Proto claims
        expect(jar.attributes.length).toBeGreaterThan(0);
        for (const line of jar.attributes) expect(line).not.toMatch(/;\s*secure/iu);

        const logout = await step('/session/end');
        expect(logout.status).toBe(200);
        expect(logout.body).toContain(`action="${suite.issuer.issuer}/session/end/confirm"`);
      });
    });

    it('when the request target is absolute-form (GET http://evil.example/…), discovery still names the ISSUER origin', async () => {
      const response = await send(suite.issuer, `http://${EVIL}/.well-known/openid-configuration`, { headers: { host: EVIL } });
      expect(response.status).toBe(200);
      expect(response.body).not.toContain(EVIL);
      const metadata = JSON.parse(response.body) as Record<string, unknown>;
      expect(metadata['token_endpoint']).toBe(`${suite.issuer.issuer}/token`);
      expect(metadata['jwks_uri']).toBe(`${suite.issuer.issuer}/jwks`);
    });
  });
});
