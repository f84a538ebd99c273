import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as oidc from 'openid-client';
import type { Browser } from 'playwright-core';

import { createApiKey } from '../../src/domain/api-keys.js';
import { PasswordHasher } from '../../src/domain/passwords.js';
import { createUser } from '../../src/domain/users.js';
import { backends } from '../support/backends.js';
import { callbackServer, launchBrowser } from '../support/browser.js';
import { basicAuth, request } from '../support/http.js';
import { issuerSuite } from '../support/issuer.js';
import { captureLogs } from '../support/logs.js';
import { postForm, registerClient, type Credentials } from '../support/oauth.js';

const ORDERS = 'http://localhost:4001';
const PASSWORD = 'correct horse battery staple';
const WRONG_PASSWORD = 'incorrect mule battery stapler';

interface Tokens {
  access_token: string;
  refresh_token?: string;
  id_token?: string;
}

/** The forms a value could take in a log line: as is, form- and percent-encoded, and JSON-escaped. */
function spellings(value: string): string[] {
  const forms = [value, new URLSearchParams({ v: value }).toString().slice(2), encodeURIComponent(value), JSON.stringify(value).slice(1, -1)];
  return [...new Set(forms)];
}

/** A client's secret, the Basic header it sends, and the credentials of that header on their own. */
function clientSecrets(client: Credentials): Record<string, string> {
  const header = basicAuth(client.id, client.secret);
  return { client_secret: client.secret, authorization: header, basic_credentials: header.slice('Basic '.length) };
}


describe.each(backends)('log redaction ($name)', (backend) => {
  const logs = captureLogs();
  // the most the issuer ever logs
  const suite = issuerSuite(backend, { LOG_LEVEL: 'trace' }, { logger: (config) => logs.logger(config.logLevel) });
  let machine: Credentials;
  let app: Credentials;

  /** Every captured line that carries one of `secrets` (by name) in any spelling: none, if redaction holds. */
  function leaks(secrets: Record<string, string>): { secret: string; line: string }[] {
    for (const [name, value] of Object.entries(secrets)) {
      // a missing or tiny value would be found everywhere, or by chance
      if (value.length < 8) throw new Error(`${name} is too short to look for: ${JSON.stringify(value)}`);
    }
    return logs.lines.flatMap((line) =>
      Object.entries(secrets)
        .filter(([, value]) => spellings(value).some((spelling) => line.includes(spelling)))
        .map(([secret]) => ({ secret, line })),
    );
  }

  /** The token endpoint's answer, which must be a success. */
  async function tokens(form: Record<string, string>, client: Credentials): Promise<Tokens> {
    const response = await postForm(suite.issuer.url, form, client);
    expect(response.status).toBe(200);
    return (await response.json()) as Tokens;
  }

  beforeAll(async () => {
    const { stores } = suite.issuer;
    machine = await registerClient(stores.clients, { name: 'machine', grants: ['client_credentials'], scopes: ['orders:read'], resources: [ORDERS] });
    app = await registerClient(stores.clients, { name: 'mobile', grants: ['password', 'refresh_token'], scopes: ['orders:read'], resources: [ORDERS] });
    await createUser(stores.users, { username: 'alice', password: PASSWORD, roles: ['admin'] }, new PasswordHasher());
  });

  it('when the issuer has started, its lines are captured (so that the tests below see what it logs)', () => {
    expect(logs.lines.map((line) => (JSON.parse(line) as { msg?: string }).msg)).toContain('sigil issuer listening');
  });

  it('when a client gets a client-credentials token, no log line carries its secret, its Authorization header or the token', async () => {
    const issued = await tokens({ grant_type: 'client_credentials' }, machine);
    const viaPost = await postForm(suite.issuer.url, { grant_type: 'client_credentials', client_id: machine.id, client_secret: machine.secret });
    expect(viaPost.status).toBe(200);
    const posted = (await viaPost.json()) as Tokens;
    const client = clientSecrets(machine);
    expect(leaks({ ...client, access_token: issued.access_token, posted_access_token: posted.access_token })).toEqual([]);
  });

  it('when a user gets a password-grant token and refreshes it (rotation, a retry, then the spent token again), no log line carries the password, a token or the Authorization header', async () => {
    const first = await tokens({ grant_type: 'password', username: 'alice', password: PASSWORD, scope: 'orders:read' }, app);
    const rotated = await tokens({ grant_type: 'refresh_token', refresh_token: first.refresh_token ?? '' }, app);
    expect(rotated.refresh_token).not.toBe(first.refresh_token);
    // a retry of the spent token (answered with the same successor), then, once the successor
    // has been used, its reuse: refused, and the grant is revoked
    const retried = await tokens({ grant_type: 'refresh_token', refresh_token: first.refresh_token ?? '' }, app);
    expect(retried.refresh_token).toBe(rotated.refresh_token);
    const next = await tokens({ grant_type: 'refresh_token', refresh_token: rotated.refresh_token ?? '' }, app);
    const replayed = await postForm(suite.issuer.url, { grant_type: 'refresh_token', refresh_token: first.refresh_token ?? '' }, app);
    expect(replayed.status).toBe(400);
    const client = clientSecrets(app);
    expect(
      leaks({
        password: PASSWORD,
        ...client,
        access_token: first.access_token,
        refresh_token: first.refresh_token ?? '',
        rotated_access_token: rotated.access_token,
        rotated_refresh_token: rotated.refresh_token ?? '',
        retried_access_token: retried.access_token,
        next_refresh_token: next.refresh_token ?? '',
      }),
    ).toEqual([]);
  });

  it('when a sign-in fails at the token endpoint, no log line carries the password tried', async () => {
    const refused = await postForm(suite.issuer.url, { grant_type: 'password', username: 'alice', password: WRONG_PASSWORD }, app);
    expect(refused.status).toBe(400);
    expect(leaks({ password_tried: WRONG_PASSWORD, ...clientSecrets(app) })).toEqual([]);
  });

  it('when tokens and an API key are introspected and a refresh token revoked, no log line carries them', async () => {
    const issued = await tokens({ grant_type: 'password', username: 'alice', password: PASSWORD }, app);
    const { key } = await createApiKey(suite.issuer.stores.apiKeys, { name: 'ci', resources: [ORDERS], scopes: ['orders:read'] });
    const introspect = async (token: string) => {
      const response = await postForm(suite.issuer.url, { token }, app, { path: '/token/introspection' });
      expect(response.status).toBe(200);
      return (await response.json()) as { active: boolean };
    };
    expect(await introspect(issued.access_token)).toMatchObject({ active: true });
    expect(await introspect(issued.refresh_token ?? '')).toMatchObject({ active: true });
    expect(await introspect(key)).toMatchObject({ active: true });
    const revoked = await postForm(suite.issuer.url, { token: issued.refresh_token ?? '' }, app, { path: '/token/revocation' });
    expect(revoked.status).toBe(200);
    expect(await introspect(issued.refresh_token ?? '')).toEqual({ active: false });
    expect(leaks({ access_token: issued.access_token, refresh_token: issued.refresh_token ?? '', api_key: key, ...clientSecrets(app) })).toEqual([]);
  });

  it('when requests are refused (a NUL byte beside the real password, an unknown path with a Bearer token and cookies, a bad Bearer at /me), no line carries a password, token, secret or header value', async () => {
    const issued = await tokens({ grant_type: 'password', username: 'alice', password: PASSWORD }, app);
    const bearer = `Bearer ${issued.access_token}`;
    const cookie = `_session=${'s'.repeat(43)}; _session.sig=${'t'.repeat(27)}`;
    // a NUL byte beside the real password: refused by the input gate, before any sign-in
    const failed = await postForm(suite.issuer.url, { grant_type: 'password', username: 'alice\u0000', password: PASSWORD }, app);
    expect(failed.status).toBe(400);
    expect(await failed.json()).toEqual({ error: 'invalid_request', error_description: 'the parameter "username" contains a control character' });
    const unknown = await request(`${suite.issuer.url}/no/such/thing`, { method: 'POST', headers: { authorization: bearer, cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: `password=${encodeURIComponent(PASSWORD)}` });
    expect(unknown.status).toBe(404);
    const userinfo = await request(`${suite.issuer.url}/me`, { headers: { authorization: `${bearer}x`, cookie } });
    expect(userinfo.status).toBe(401);

    const client = clientSecrets(app);
    expect(
      leaks({
        password: PASSWORD,
        ...client,
        bearer,
        access_token: issued.access_token,
        refresh_token: issued.refresh_token ?? '',
        cookie,
      }),
    ).toEqual([]);
  });

  // a NUL byte used to reach the database, whose error (on PGlite, carrying the statement's
  // parameters) was logged with the token in it; unit/logger.test.ts covers such errors
  it('when a live refresh token is presented with a NUL byte appended, it is refused (400 invalid_request) and no line carries the token', async () => {
    const issued = await tokens({ grant_type: 'password', username: 'alice', password: PASSWORD }, app);
    const refreshToken = issued.refresh_token ?? '';
    const refused = await postForm(suite.issuer.url, { token: `${refreshToken}\u0000` }, app, { path: '/token/introspection' });
    expect(refused.status).toBe(400);
    expect(await refused.json()).toEqual({ error: 'invalid_request', error_description: 'the parameter "token" contains a control character' });
    expect(leaks({ refresh_token: refreshToken, ...clientSecrets(app) })).toEqual([]);
  });

  describe('in a browser', () => {
    let browser: Browser;
    let callback: Awaited<ReturnType<typeof callbackServer>>;
    let web: Credentials;

    beforeAll(async () => {
      callback = await callbackServer();
      browser = await launchBrowser();
      web = await registerClient(suite.issuer.stores.clients, {
        name: 'Order Desk',
        grants: ['authorization_code', 'refresh_token'],
        scopes: ['openid', 'profile', 'orders:read'],
        redirectUris: [callback.url],
        resources: [ORDERS],
      });
    });

    afterAll(async () => {
      await browser?.close();
      await callback?.close();
    });

    it('when a user fails, then signs in and consents, and the client exchanges the code, no log line carries the passwords, the CSRF token, a cookie, the code or a token', async () => {
      const context = await browser.newContext();
      const page = await context.newPage();
      const verifier = oidc.randomPKCECodeVerifier();
      const authorize = new URL(`${suite.issuer.url}/auth`);
      authorize.search = new URLSearchParams({
        client_id: web.id,
        response_type: 'code',
        redirect_uri: callback.url,
        // no resource scope: the access token is the opaque one of userinfo
        scope: 'openid profile',
        state: oidc.randomState(),
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
      }).toString();
      await page.goto(authorize.href);
      const csrf = (await page.getAttribute('input[name=csrf]', 'value')) ?? '';
      const submit = async (password: string) => {
        await page.fill('input[name=username]', 'alice');
        await page.fill('input[name=password]', password);
        const [response] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST' && r.url().includes('/login')), page.click('button[type=submit]')]);
        return response.status();
      };
      expect(await submit(WRONG_PASSWORD)).toBe(401);
      // the form posted with the real password, its cookies and CSRF token, and a NUL in the username: refused by the input gate
      const action = (await page.getAttribute('form', 'action')) ?? '';
      const broken = await page.request.post(`${suite.issuer.issuer}${action}`, { form: { csrf, username: 'alice\u0000', password: PASSWORD }, maxRedirects: 0 });
      expect(broken.status()).toBe(400);
      expect(await submit(PASSWORD)).toBe(303);
      await page.waitForSelector('button[name=decision][value=allow]');
      await Promise.all([page.waitForURL(`${callback.url}?**`), page.click('button[name=decision][value=allow]')]);
      const code = new URL(page.url()).searchParams.get('code') ?? '';
      expect(code).not.toBe('');
      const cookies = await context.cookies();
      expect(cookies.length).toBeGreaterThan(0);
      await context.close();

      const issued = await tokens({ grant_type: 'authorization_code', code, redirect_uri: callback.url, code_verifier: verifier }, web);
      const userinfo = await request(`${suite.issuer.url}/me`, { headers: { authorization: `Bearer ${issued.access_token}` } });
      expect(userinfo.status).toBe(200);
      const refreshed = await tokens({ grant_type: 'refresh_token', refresh_token: issued.refresh_token ?? '' }, web);

      const client = clientSecrets(web);
      expect(
        leaks({
          password: PASSWORD,
          password_tried: WRONG_PASSWORD,
          csrf,
          code,
          code_verifier: verifier,
        ...client,
          access_token: issued.access_token,
          refresh_token: issued.refresh_token ?? '',
          id_token: issued.id_token ?? '',
          refreshed_access_token: refreshed.access_token,
          refreshed_refresh_token: refreshed.refresh_token ?? '',
          ...Object.fromEntries(cookies.map((cookie) => [`cookie ${cookie.name}`, cookie.value])),
        }),
      ).toEqual([]);
    });
  });
});
