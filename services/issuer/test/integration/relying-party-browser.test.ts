import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { ConfigParams } from 'express-openid-connect';
import * as oidc from 'openid-client';
import type { Browser, Page, Response } from 'playwright-core';

import { createAccessTokenVerifier, InvalidToken } from '@sigil/guard';

import type { NewClient } from '../../src/domain/clients.js';
import { PasswordHasher } from '../../src/domain/passwords.js';
import { createUser } from '../../src/domain/users.js';
import { backends } from '../support/backends.js';
import { callbackServer, launchBrowser } from '../support/browser.js';
import { request } from '../support/http.js';
import { freePort, issuerSuite } from '../support/issuer.js';
import { registerClient } from '../support/oauth.js';
import { authorizeWithoutBrowser } from '../support/sign-in.js';

const PASSWORD = 'correct horse battery staple';
/** The scopes express-openid-connect asks for unless told otherwise. */
const LIBRARY_SCOPES = ['openid', 'profile', 'email'];
const ORDERS = 'http://localhost:4001';
const REPORTS = 'http://localhost:4002';

/** The values of one directive of a Content-Security-Policy header, or undefined without it. */
function directive(csp: string | string[] | undefined, name: string): string[] | undefined {
  for (const part of [csp ?? ''].flat().join(';').split(';')) {
    const [directiveName, ...values] = part.trim().split(/\s+/u);
    if (directiveName === name) return values;
  }
  return undefined;
}

const RELYING_PARTY_APP = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../support/relying-party-app.js');

interface RelyingParty {
  /** The app's origin (`http://127.0.0.1:port`); its callback is `/callback`. */
  readonly origin: string;
  close(): Promise<void>;
}

/**
 * Starts the express-openid-connect app (support/relying-party-app.js) on a loopback port with
 * the library options `configure` gives for the app's origin (less `baseURL`, which is that origin).
 */
async function relyingParty(configure: (origin: string) => Promise<Omit<ConfigParams, 'baseURL'>>): Promise<RelyingParty> {
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const env = { PATH: process.env['PATH'] ?? '', PORT: String(port), RP_CONFIG: JSON.stringify(await configure(origin)) };
  const child = spawn(process.execPath, [RELYING_PARTY_APP], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const collect = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('listening\n')) resolve();
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    void exited.then(() => reject(new Error(`the relying party exited before listening: ${output}`)));
  });
  return {
    origin,
    close: async () => {
      child.kill();
      await exited;
    },
  };
}

describe.each(backends)('relying parties in a real browser, every response mode ($name)', (backend) => {
  const suite = issuerSuite(backend);
  let browser: Browser;
  let userId: string;
  const apps: RelyingParty[] = [];

  /**
   * Starts an app whose client (first-party: no consent page) is registered for the app's
   * `/callback`, and for the post-logout redirect URIs `postLogout` makes of the app's origin.
   */
  async function app(
    options: Omit<ConfigParams, 'baseURL'> = {},
    postLogout: (origin: string) => string[] = () => [],
    registration: Partial<Pick<NewClient, 'grants' | 'scopes' | 'resources'>> = {},
  ): Promise<RelyingParty> {
    const started = await relyingParty(async (origin) => {
      const client = await registerClient(suite.issuer.stores.clients, {
        name: 'Library App',
        grants: ['authorization_code'],
        scopes: LIBRARY_SCOPES,
        redirectUris: [`${origin}/callback`],
        postLogoutRedirectUris: postLogout(origin),
        firstParty: true,
        ...registration,
      });
      return {
        issuerBaseURL: suite.issuer.issuer,
        clientID: client.id,
        clientSecret: client.secret,
        secret: 'a session secret of the test app, long enough',
        authRequired: false,
        ...options,
      };
    });
    apps.push(started);
    return started;
  }

  /** Signs in on Sigil's login page, once the browser has been sent there. */
  async function signIn(page: Page): Promise<void> {
    await page.waitForURL(`${suite.issuer.issuer}/interaction/**`);
    await page.fill('input[name=username]', 'alice');
    await page.fill('input[name=password]', PASSWORD);
    await page.click('button[type=submit]');
  }

  /**
   * Opens the app's login route in a fresh browser context, signs in, and waits to be back at
   * the app past its callback. Answers what the app's `/me` then says, and the issuer's
   * answers the browser saw on the way.
   */
  async function signInThrough(rp: RelyingParty) {
    const context = await browser.newContext();
    const page = await context.newPage();
    const issuerAnswers: Response[] = [];
    page.on('response', (answer) => {
      if (answer.url().startsWith(`${suite.issuer.issuer}/`)) issuerAnswers.push(answer);
    });
    await page.goto(`${rp.origin}/login`);
    await signIn(page);
    await page.waitForURL((url) => url.origin === rp.origin && url.pathname !== '/callback');
    await page.goto(`${rp.origin}/me`);
    const me = JSON.parse((await page.textContent('body')) ?? '') as { authenticated: boolean; sub: string | null };
    await context.close();
    return { me, issuerAnswers };
  }

  beforeAll(async () => {
    browser = await launchBrowser();
    const user = await createUser(suite.issuer.stores.users, { username: 'Alice', password: PASSWORD, roles: [], email: 'alice@example.com' }, new PasswordHasher());
    userId = user.id;
  });

  afterAll(async () => {
    await browser?.close();
    await Promise.all(apps.map((rp) => rp.close()));
  });

  it('when the library keeps its defaults (response_type id_token, form_post), Sigil (code flow only) answers unsupported_response_type, and the form post brings that answer back to the app', async () => {
    const rp = await app();
    const context = await browser.newContext();
    const page = await context.newPage();
    const [callback] = await Promise.all([page.waitForRequest(`${rp.origin}/callback`), page.goto(`${rp.origin}/login`)]);
    expect(callback.method()).toBe('POST');
    expect(callback.postData()).toContain('error=unsupported_response_type');
    await page.waitForURL(`${rp.origin}/callback`);
    expect(await page.textContent('body')).toBe('error: authorization response from the server is an error');
    await context.close();
  });

  it('when the library asks for the code flow and leaves the response mode to Sigil (query), the user ends signed in at the app', async () => {
    const rp = await app({ authorizationParams: { response_type: 'code' } });
    const { me } = await signInThrough(rp);
    expect(me).toEqual({ authenticated: true, sub: userId });
  });

  it('when the library asks for code with response_mode=form_post, the user ends signed in; that one answer lets forms post to the app\'s origin, with a nonce\'d script', async () => {
    const rp = await app({ authorizationParams: { response_type: 'code', response_mode: 'form_post' } });
    const { me, issuerAnswers } = await signInThrough(rp);
    expect(me).toEqual({ authenticated: true, sub: userId });

    // helmet's general policy has script-src 'self'; only the form post page names a nonce
    const pages = issuerAnswers.filter((answer) => directive(answer.headers()['content-security-policy'], 'script-src')?.some((source) => source.startsWith("'nonce-")));
    expect(pages.map((answer) => new URL(answer.url()).pathname)).toEqual([expect.stringMatching(/^\/auth\//u)]);
    const formPost = pages[0]?.headers() ?? {};
    const csp = formPost['content-security-policy'];
    expect(directive(csp, 'form-action')).toEqual([rp.origin]);
    expect(directive(csp, 'script-src')).toEqual([expect.stringMatching(/^'nonce-[A-Za-z0-9+/]+={0,2}'$/u)]);
    expect(csp).not.toContain('unsafe-inline');
    expect(directive(csp, 'frame-ancestors')).toEqual(["'none'"]);
    expect(formPost['cache-control']).toContain('no-store');
  });

  it('when the library asks for code with response_mode=query, the user ends signed in', async () => {
    const rp = await app({ authorizationParams: { response_type: 'code', response_mode: 'query' } });
    const { me, issuerAnswers } = await signInThrough(rp);
    expect(me).toEqual({ authenticated: true, sub: userId });
    // no answer on the way was a form post page (the only one with a nonce'd script)
    expect(issuerAnswers.flatMap((answer) => directive(answer.headers()['content-security-policy'], 'script-src') ?? []).filter((source) => source.startsWith("'nonce-"))).toEqual([]);
  });

  it('when a client asks for response_mode=fragment (which the library does not offer), Chromium lands on the callback with the code in the fragment', async () => {
    const callback = await callbackServer();
    try {
      const client = await registerClient(suite.issuer.stores.clients, { name: 'Fragment App', grants: ['authorization_code'], scopes: ['openid'], redirectUris: [callback.url], firstParty: true });
      const config = await oidc.discovery(new URL(suite.issuer.issuer), client.id, client.secret, undefined, { execute: [oidc.allowInsecureRequests] });
      const verifier = oidc.randomPKCECodeVerifier();
      const state = oidc.randomState();
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: callback.url,
        scope: 'openid',
        state,
        response_mode: 'fragment',
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
      });
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(url.href);
      await signIn(page);
      await page.waitForURL(`${callback.url}#**`);
      const landed = new URL(page.url());
      // what a page script reads from location.hash, handed to the token request as a query
      const tokens = await oidc.authorizationCodeGrant(config, new URL(`${callback.url}?${landed.hash.slice(1)}`), { pkceCodeVerifier: verifier, expectedState: state });
      expect(tokens.claims()?.sub).toBe(userId);
      await context.close();
    } finally {
      await callback.close();
    }
  });

  it('when a client has redirect URIs on two origins, the form post answer allows only the one posted to, escapes what it carries, and other answers keep form-action \'self\'', async () => {
    const first = 'http://127.0.0.1:1/cb';
    const second = 'http://localhost:2/cb';
    const client = await registerClient(suite.issuer.stores.clients, { name: 'Two Origins', grants: ['authorization_code'], scopes: ['openid'], redirectUris: [first, second], firstParty: true });
    const hostileState = '"><script>alert(1)</script>';
    const { answer } = await authorizeWithoutBrowser(suite.issuer.issuer, {
      clientId: client.id,
      redirectUri: second,
      scope: 'openid',
      username: 'alice',
      password: PASSWORD,
      parameters: { response_mode: 'form_post', state: hostileState },
    });
    expect(answer.status).toBe(200);
    const csp = answer.headers['content-security-policy'];
    expect(directive(csp, 'form-action')).toEqual(['http://localhost:2']);
    expect(csp).not.toContain('127.0.0.1:1');
    expect(answer.body).toContain('<form method="post" action="http://localhost:2/cb">');
    expect(answer.body).toContain('<input type="hidden" name="state" value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;">');
    expect(answer.body).toMatch(/<input type="hidden" name="code" value="[^"]+">/u);
    expect(answer.body).toContain(`<input type="hidden" name="iss" value="${suite.issuer.issuer}">`);
    // the one script is the page's, under the header's nonce
    const nonce = /'nonce-([^']+)'/u.exec(directive(csp, 'script-src')?.join(' ') ?? '')?.[1];
    expect([...answer.body.matchAll(/<script([^>]*)>/gu)].map((match) => match[1])).toEqual([` nonce="${nonce}"`]);

    // an error the engine sends back by form post (prompt=none without a session) gets the same policy
    const silent = new URLSearchParams({ client_id: client.id, redirect_uri: first, response_type: 'code', response_mode: 'form_post', scope: 'openid', prompt: 'none', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' });
    const refused = await request(`${suite.issuer.issuer}/auth?${silent.toString()}`);
    expect(refused.status).toBe(400);
    expect(refused.body).toContain('<input type="hidden" name="error" value="login_required">');
    expect(directive(refused.headers['content-security-policy'], 'form-action')).toEqual(['http://127.0.0.1:1']);

    // every other answer keeps its own policy: discovery (a JSON endpoint: no form may post from
    // it at all) and Sigil's error page (the general policy)
    const discovery = await request(`${suite.issuer.issuer}/.well-known/openid-configuration`);
    expect(JSON.parse(discovery.body)).toMatchObject({ response_modes_supported: ['form_post', 'fragment', 'query'] });
    expect(directive(discovery.headers['content-security-policy'], 'form-action')).toEqual(["'none'"]);
    const unknownClient = await request(`${suite.issuer.issuer}/auth?client_id=nobody&response_type=code&response_mode=form_post&redirect_uri=${encodeURIComponent(second)}`);
    expect(unknownClient.body).toContain('Sign-in could not continue');
    expect(directive(unknownClient.headers['content-security-policy'], 'form-action')).toEqual(["'self'"]);
    expect(directive(unknownClient.headers['content-security-policy'], 'script-src')).toBeUndefined();
  });

  it('the library finds the standard claims of profile and email in req.oidc.user', async () => {
    const rp = await app({ authorizationParams: { response_type: 'code' } });
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${rp.origin}/login`);
    await signIn(page);
    await page.waitForURL((url) => url.origin === rp.origin && url.pathname !== '/callback');
    await page.goto(`${rp.origin}/user`);
    const user = JSON.parse((await page.textContent('body')) ?? '') as Record<string, unknown>;
    expect(user).toMatchObject({ sub: userId, preferred_username: 'Alice', email: 'alice@example.com', email_verified: false, updated_at: expect.any(Number) });
    expect(user).not.toHaveProperty('name');
    await context.close();
  });

  it('a web app that asked for openid profile email and an API scope calls the API with its token, reads userinfo after a refresh for the OpenID scopes, and its API token is good at that API only', async () => {
    const rp = await app(
      { authorizationParams: { response_type: 'code', scope: 'openid profile email orders:read' } },
      () => [],
      { grants: ['authorization_code', 'refresh_token'], scopes: [...LIBRARY_SCOPES, 'orders:read', 'reports:read'], resources: [ORDERS, REPORTS] },
    );
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${rp.origin}/login`);
    await signIn(page);
    await page.waitForURL((url) => url.origin === rp.origin && url.pathname !== '/callback');
    const apiToken = async () => {
      await page.goto(`${rp.origin}/api-token`);
      return (JSON.parse((await page.textContent('body')) ?? '') as { access_token: string }).access_token;
    };
    const verifier = (audience: string) => createAccessTokenVerifier({ issuer: suite.issuer.issuer, audience, jwksUri: `${suite.issuer.issuer}/jwks` });

    // the token of the sign-in: for orders-api (the client's first resource), its scope only
    const first = await apiToken();
    expect(await verifier(ORDERS).verify(first)).toMatchObject({ sub: userId, scopes: ['orders:read'] });
    await expect(verifier(REPORTS).verify(first)).rejects.toBeInstanceOf(InvalidToken);
    expect((await request(`${suite.issuer.url}/me`, { headers: { authorization: `Bearer ${first}` } })).status).toBe(401);

    await page.goto(`${rp.origin}/userinfo`);
    const userinfo = JSON.parse((await page.textContent('body')) ?? '') as Record<string, unknown>;
    expect(userinfo).toMatchObject({ sub: userId, preferred_username: 'Alice', email: 'alice@example.com', email_verified: false });

    // after the app's refreshes, its token is for orders-api again, and only there
    const again = await apiToken();
    expect(again).not.toBe(first);
    expect(await verifier(ORDERS).verify(again)).toMatchObject({ sub: userId, scopes: ['orders:read'] });
    await expect(verifier(REPORTS).verify(again)).rejects.toBeInstanceOf(InvalidToken);
    await context.close();
  });

  it('with idpLogout, the app\'s /logout ends the issuer session on Sigil\'s confirm page and comes back to the registered post-logout URI with its state; the next sign-in asks for credentials again', async () => {
    const state = 'logout-state-0123456789';
    const rp = await app(
      { authorizationParams: { response_type: 'code' }, idpLogout: true, routes: { postLogoutRedirect: '/signed-out' }, logoutParams: { state } },
      (origin) => [`${origin}/signed-out`],
    );
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${rp.origin}/login`);
    await signIn(page);
    await page.waitForURL((url) => url.origin === rp.origin && url.pathname !== '/callback');

    const [confirmPage] = await Promise.all([
      page.waitForResponse((answer) => new URL(answer.url()).pathname === '/session/end' && answer.request().method() === 'GET'),
      page.goto(`${rp.origin}/logout`),
    ]);
    const endSession = new URL(confirmPage.url());
    expect(endSession.origin).toBe(suite.issuer.issuer);
    expect(endSession.searchParams.get('post_logout_redirect_uri')).toBe(`${rp.origin}/signed-out`);
    expect(endSession.searchParams.get('id_token_hint')).toBeTruthy();
    // the confirm form's post is answered with a 303 to the app: the page's policy allows that origin
    expect(directive(confirmPage.headers()['content-security-policy'], 'form-action')).toEqual(["'self'", rp.origin]);
    expect(await page.textContent('h1')).toBe('Sign out?');
    expect(await page.textContent('main')).toContain('Library App');
    await page.click('button[name=logout][value=yes]');
    await page.waitForURL(`${rp.origin}/signed-out?**`);
    const landed = new URL(page.url());
    expect(Object.fromEntries(landed.searchParams)).toEqual({ state });
    expect(await page.textContent('body')).toBe('signed out');

    await page.goto(`${rp.origin}/me`);
    expect(JSON.parse((await page.textContent('body')) ?? '')).toEqual({ authenticated: false, sub: null });
    // the same browser, issuer cookies and all: no silent sign-in, Sigil's login page again
    await page.goto(`${rp.origin}/login`);
    await page.waitForURL(`${suite.issuer.issuer}/interaction/**`);
    expect(await page.isVisible('input[name=password]')).toBe(true);
    await context.close();
  });

  it('a post_logout_redirect_uri the client did not register is refused on Sigil\'s error page, without a redirect', async () => {
    const registered = 'http://127.0.0.1:1/signed-out';
    const client = await registerClient(suite.issuer.stores.clients, {
      name: 'Logout App',
      grants: ['authorization_code'],
      scopes: ['openid'],
      redirectUris: ['http://127.0.0.1:1/cb'],
      postLogoutRedirectUris: [registered],
      firstParty: true,
    });
    for (const uri of ['https://evil.example/signed-out', 'http://127.0.0.1:1/signed-out/', 'http://127.0.0.1:1/cb']) {
      const query = new URLSearchParams({ client_id: client.id, post_logout_redirect_uri: uri, state: 'x' });
      const answer = await request(`${suite.issuer.issuer}/session/end?${query.toString()}`);
      expect(answer.status).toBe(400);
      expect(answer.headers['location']).toBeUndefined();
      expect(answer.body).toContain('post_logout_redirect_uri not registered');
      expect(directive(answer.headers['content-security-policy'], 'form-action')).toEqual(["'self'"]);
    }
    // the registered one is accepted: without a session, the engine's own form confirms at once
    const query = new URLSearchParams({ client_id: client.id, post_logout_redirect_uri: registered, state: 'x' });
    const accepted = await request(`${suite.issuer.issuer}/session/end?${query.toString()}`);
    expect(accepted.status).toBe(200);
  });
});
