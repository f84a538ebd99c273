import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import type { Browser, Page } from 'playwright-core';

import { PasswordHasher } from '../../src/domain/passwords.js';
import { createUser } from '../../src/domain/users.js';
import { backends } from '../support/backends.js';
import { callbackServer, launchBrowser } from '../support/browser.js';
import { issuerSuite } from '../support/issuer.js';
import { registerClient } from '../support/oauth.js';

const ORDERS = 'http://localhost:4001';
const REPORTS = 'http://localhost:4002';
const PASSWORD = 'correct horse battery staple';
const ARTIFACTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../test-artifacts');

describe.each(backends)('authorization code + PKCE in a real browser ($name)', (backend) => {
  const suite = issuerSuite(backend);
  let browser: Browser;
  let callback: Awaited<ReturnType<typeof callbackServer>>;
  let web: oidc.Configuration;
  let firstParty: oidc.Configuration;
  let wide: oidc.Configuration;
  let webClientId: string;

  async function rp(clientId: string, secret: string): Promise<oidc.Configuration> {
    return oidc.discovery(new URL(suite.issuer.issuer), clientId, secret, undefined, { execute: [oidc.allowInsecureRequests] });
  }

  /** Starts an authorization request; returns where to send the browser and how to finish. */
  async function authorize(config: oidc.Configuration, scope: string, extra: Record<string, string> = {}) {
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: callback.url,
      scope,
      state,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      ...extra,
    });
    return { url: url.href, verifier, state };
  }

  async function login(page: Page): Promise<number | undefined> {
    await page.fill('input[name=username]', 'alice');
    await page.fill('input[name=password]', PASSWORD);
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && r.url().includes('/login')),
      page.click('button[type=submit]'),
    ]);
    return response.status();
  }

  /** A user signs in to the first-party client (no consent page) in a new browser context, which gets the tokens. */
  async function firstPartySignIn(scope: string) {
    const context = await browser.newContext();
    const page = await context.newPage();
    const request = await authorize(firstParty, scope);
    await page.goto(request.url);
    await login(page);
    await page.waitForURL(`${callback.url}?**`);
    const tokens = await oidc.authorizationCodeGrant(firstParty, new URL(page.url()), { pkceCodeVerifier: request.verifier, expectedState: request.state });
    return { context, page, tokens };
  }

  beforeAll(async () => {
    const { issuer } = suite;
    callback = await callbackServer();
    browser = await launchBrowser();
    await createUser(issuer.stores.users, { username: 'Alice', password: PASSWORD, roles: ['admin'], email: 'alice@example.com' }, new PasswordHasher());
    const webClient = await registerClient(issuer.stores.clients, {
      name: 'Order Desk',
      grants: ['authorization_code', 'refresh_token'],
      scopes: ['openid', 'profile', 'email', 'orders:read'],
      redirectUris: [callback.url],
      resources: [ORDERS],
    });
    webClientId = webClient.id;
    web = await rp(webClient.id, webClient.secret);
    const trusted = await registerClient(issuer.stores.clients, {
      name: 'Console',
      grants: ['authorization_code', 'refresh_token'],
      scopes: ['openid', 'profile', 'email', 'orders:read'],
      redirectUris: [callback.url],
      resources: [ORDERS],
      firstParty: true,
    });
    firstParty = await rp(trusted.id, trusted.secret);
    // resource services' own clients declare their audiences' scopes; this client may have both
    await registerClient(issuer.stores.clients, { name: 'orders-api', resources: [ORDERS], scopes: ['orders:read', 'orders:write'] });
    await registerClient(issuer.stores.clients, { name: 'reports-api', resources: [REPORTS], scopes: ['reports:read'] });
    const both = await registerClient(issuer.stores.clients, {
      name: 'Dashboard',
      grants: ['authorization_code', 'refresh_token'],
      scopes: ['openid', 'profile', 'orders:read', 'reports:read'],
      redirectUris: [callback.url],
      resources: [ORDERS, REPORTS],
      firstParty: true,
    });
    wide = await rp(both.id, both.secret);
  });

  afterAll(async () => {
    await browser?.close();
    await callback?.close();
  });

  it('when a user signs in (S9 no framing, S8 no CORS, S10 303) and consents, the client gets tokens with iss (S11); refresh rotates (S5); code replay revokes the grant (S3)', async () => {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
    const page = await context.newPage();
    const request = await authorize(web, 'openid profile orders:read');
    const loginResponse = await page.goto(request.url);
    expect(page.url()).toMatch(new RegExp(`^${suite.issuer.issuer}/interaction/`, 'u'));
    const headers = loginResponse?.headers() ?? {};
    expect(headers['content-security-policy']).toContain("frame-ancestors 'none'"); // S9
    expect(headers['x-frame-options']).toBe('SAMEORIGIN');
    expect(headers['access-control-allow-origin']).toBeUndefined(); // S8
    expect(await page.getAttribute('label[for=username]', 'for')).toBe('username');
    await fs.mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, `login-page-${backend.name}.png`), fullPage: true });

    expect(await login(page)).toBe(303); // S10
    await page.waitForSelector('button[name=decision][value=allow]');
    expect(await page.textContent('main')).toContain('Order Desk');
    await page.screenshot({ path: path.join(ARTIFACTS, `consent-page-${backend.name}.png`), fullPage: true });
    await Promise.all([page.waitForURL(`${callback.url}?**`), page.click('button[name=decision][value=allow]')]);

    const callbackUrl = new URL(page.url());
    expect(callbackUrl.searchParams.get('iss')).toBe(suite.issuer.issuer); // S11, RFC 9207
    const tokens = await oidc.authorizationCodeGrant(web, callbackUrl, { pkceCodeVerifier: request.verifier, expectedState: request.state });
    expect(tokens.id_token).toEqual(expect.any(String));
    expect(tokens.refresh_token).toEqual(expect.any(String));
    const jwks = createRemoteJWKSet(new URL(`${suite.issuer.url}/jwks`));
    const { payload } = await jwtVerify(tokens.access_token, jwks, { issuer: suite.issuer.issuer, audience: ORDERS, typ: 'at+jwt' });
    expect(payload).toMatchObject({ sub: tokens.claims()?.sub, client_id: webClientId, scope: 'orders:read', roles: ['admin'] });

    const refreshed = await oidc.refreshTokenGrant(web, tokens.refresh_token ?? '');
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
    // reuse once the successor has been used (before, it is a retry: refresh-retry.test.ts)
    await oidc.refreshTokenGrant(web, refreshed.refresh_token ?? '');
    await expect(oidc.refreshTokenGrant(web, tokens.refresh_token ?? '')).rejects.toMatchObject({ error: 'invalid_grant' }); // S5

    // the code is single-use, and its replay revokes what it issued (S3)
    // the reuse above revoked the grant: the session remains, consent is asked again
    const second = await authorize(web, 'openid orders:read');
    await page.goto(second.url);
    await Promise.all([page.waitForURL(`${callback.url}?**`), page.click('button[name=decision][value=allow]')]);
    const secondCallback = new URL(page.url());
    const first = await oidc.authorizationCodeGrant(web, secondCallback, { pkceCodeVerifier: second.verifier, expectedState: second.state });
    await expect(oidc.authorizationCodeGrant(web, secondCallback, { pkceCodeVerifier: second.verifier, expectedState: second.state })).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(oidc.refreshTokenGrant(web, first.refresh_token ?? '')).rejects.toMatchObject({ error: 'invalid_grant' });
    await context.close();
  });

  it('when a code-flow token asks for scopes of two audiences, it and its refreshed successor carry only their audience\'s, no OpenID scope (S6)', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const request = await authorize(wide, 'openid profile orders:read reports:read');
    await page.goto(request.url);
    await login(page);
    await page.waitForURL(`${callback.url}?**`);
    const tokens = await oidc.authorizationCodeGrant(wide, new URL(page.url()), { pkceCodeVerifier: request.verifier, expectedState: request.state });
    const jwks = createRemoteJWKSet(new URL(`${suite.issuer.url}/jwks`));
    const { payload } = await jwtVerify(tokens.access_token, jwks, { issuer: suite.issuer.issuer, audience: ORDERS, typ: 'at+jwt' });
    expect(payload['scope']).toBe('orders:read');
    const refreshed = await oidc.refreshTokenGrant(wide, tokens.refresh_token ?? '');
    const again = await jwtVerify(refreshed.access_token, jwks, { issuer: suite.issuer.issuer, audience: ORDERS, typ: 'at+jwt' });
    expect(again.payload['scope']).toBe('orders:read');
    await context.close();
  });

  it('when the user denies consent, the client gets access_denied', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto((await authorize(web, 'openid orders:read')).url);
    await login(page);
    await Promise.all([page.waitForURL(`${callback.url}?**`), page.click('button[name=decision][value=deny]')]);
    expect(new URL(page.url()).searchParams.get('error')).toBe('access_denied');
    await context.close();
  });

  it('when the client is first-party, there is no consent page; openid gives userinfo; logout ends the session', async () => {
    const { context, page, tokens } = await firstPartySignIn('openid profile email');
    const sub = tokens.claims()?.sub ?? '';
    // the standard claims of profile and email (no name: users have none), in userinfo and the ID token alike
    const standard = { sub, preferred_username: 'Alice', updated_at: expect.any(Number), email: 'alice@example.com', email_verified: false };
    const userinfo = await oidc.fetchUserInfo(firstParty, tokens.access_token, sub);
    expect(userinfo).toEqual(standard);
    expect(Math.abs(Number(userinfo['updated_at']) - Date.now() / 1000)).toBeLessThan(600);
    expect(tokens.claims()).toMatchObject({ ...standard, updated_at: userinfo['updated_at'] });

    await page.goto(oidc.buildEndSessionUrl(firstParty, { id_token_hint: tokens.id_token ?? '' }).href);
    await page.click('button[name=logout][value=yes]');
    await page.waitForSelector('text=You are signed out');
    await page.goto((await authorize(firstParty, 'openid')).url);
    expect(await page.isVisible('input[name=password]')).toBe(true);
    await context.close();
  });

  it('when the login form keeps getting a wrong password, it is throttled with a 429 page (brute force)', async () => {
    await createUser(suite.issuer.stores.users, { username: 'eve', password: PASSWORD }, new PasswordHasher());
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto((await authorize(web, 'openid')).url);
    const statuses: number[] = [];
    for (let i = 0; i < 6; i += 1) {
      await page.fill('input[name=username]', 'eve');
      await page.fill('input[name=password]', `wrong-password-${i}`);
      const [response] = await Promise.all([
        page.waitForResponse((r) => r.request().method() === 'POST' && r.url().includes('/login')),
        page.click('button[type=submit]'),
      ]);
      statuses.push(response.status());
    }
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429]);
    expect(await page.textContent('[role=alert]')).toMatch(/^Too many failed attempts\. Try again in 1 minute\.$/u);
    await context.close();
  });

  it('when the login form is posted without its CSRF token, it is refused and nobody is signed in', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto((await authorize(web, 'openid')).url);
    const action = await page.getAttribute('form', 'action');
    const response = await page.request.post(`${suite.issuer.issuer}${action ?? ''}`, {
      form: { username: 'alice', password: PASSWORD },
      maxRedirects: 0,
    });
    expect(response.status()).toBe(403);
    expect(await response.text()).toContain('The form expired');
    await context.close();
  });

  it.each([
    ['plain PKCE (S2)', { code_challenge_method: 'plain' }, 'invalid_request'],
    ['no PKCE challenge (S2)', { code_challenge: '', code_challenge_method: '' }, 'invalid_request'],
    ['an implicit response type (S13)', { response_type: 'token' }, 'unsupported_response_type'],
  ])('when the request uses %s, the error goes back to the client', async (_name, override, error) => {
    const request = await authorize(web, 'openid');
    const url = new URL(request.url);
    for (const [key, value] of Object.entries(override)) {
      if (value === '') url.searchParams.delete(key);
      else url.searchParams.set(key, value);
    }
    const response = await fetch(url, { redirect: 'manual' });
    expect(response.status).toBe(303);
    const location = new URL(response.headers.get('location') ?? '');
    expect(`${location.origin}${location.pathname}`).toBe(callback.url);
    // an implicit request answers in the fragment, the response mode it asked for
    const answer = location.hash === '' ? location.searchParams : new URLSearchParams(location.hash.slice(1));
    expect(answer.get('error')).toBe(error);
  });

  it('when the redirect URI is not registered exactly, never redirects to it (S1)', async () => {
    for (const redirect of ['https://evil.example/callback', `${callback.url}/extra`, `${callback.url}?x=1`, callback.url.replace('127.0.0.1', 'localhost')]) {
      const url = new URL((await authorize(web, 'openid')).url);
      url.searchParams.set('redirect_uri', redirect);
      const response = await fetch(url, { redirect: 'manual' });
      expect({ redirect, status: response.status, location: response.headers.get('location') }).toEqual({ redirect, status: 400, location: null });
      expect(await response.text()).toContain('Sign-in could not continue');
    }
  });

  it('when a native (public, loopback) client uses another port, it is allowed; a web client may not (S1)', async () => {
    const native = await registerClient(suite.issuer.stores.clients, {
      name: 'cli-app',
      grants: ['authorization_code'],
      scopes: ['openid'],
      redirectUris: ['http://127.0.0.1:7000/callback'],
      public: true,
    });
    const nativeRp = await oidc.discovery(new URL(suite.issuer.issuer), native.id, undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const nativeUrl = new URL((await authorize(nativeRp, 'openid')).url);
    nativeUrl.searchParams.set('redirect_uri', 'http://127.0.0.1:53123/callback');
    const accepted = await fetch(nativeUrl, { redirect: 'manual' });
    expect(accepted.status).toBe(303);
    expect(accepted.headers.get('location')).toMatch(/^\/interaction\//u);

    const webUrl = new URL((await authorize(web, 'openid')).url);
    webUrl.searchParams.set('redirect_uri', callback.url.replace(/:\d+\//u, ':1/'));
    expect((await fetch(webUrl, { redirect: 'manual' })).status).toBe(400);
  });

  it('when the same refresh token is used several times at once, exactly one successor is made, and every answer carries it (S5, retry window)', async () => {
    const { context, tokens } = await firstPartySignIn('openid orders:read');
    const results = await Promise.allSettled([0, 1, 2, 3].map(() => oidc.refreshTokenGrant(firstParty, tokens.refresh_token ?? '')));
    const successors = new Set(results.map((result) => (result.status === 'fulfilled' ? result.value.refresh_token : 'refused')));
    expect(successors.size).toBe(1);
    expect([...successors][0]).not.toBe(tokens.refresh_token);
    expect(successors.has('refused')).toBe(false);
    await context.close();
  });
});
