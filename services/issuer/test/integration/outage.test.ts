import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createRemoteJWKSet, jwtVerify } from 'jose';

import { PasswordHasher } from '../../src/domain/passwords.js';
import { adminToken } from '../support/admin-api.js';
import { createUser } from '../../src/domain/users.js';
import { backends, ready, type Backend } from '../support/backends.js';
import { basicAuth, eventually, request, type RawResponse } from '../support/http.js';
import { issuerSuite } from '../support/issuer.js';
import { captureLogs } from '../support/logs.js';
import { registerClient, type Credentials } from '../support/oauth.js';
import { TcpProxy, type ProxyMode } from '../support/tcp-proxy.js';

const ORDERS = 'http://localhost:4001';
const REDIRECT_URI = 'http://127.0.0.1:9/cb';
const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGEzKuO0ng';
const PASSWORD = 'correct horse battery staple';
/** DATABASE_TIMEOUT_MS of the suite's issuer. */
const TIMEOUT_MS = 1000;
/** Every answer during an outage comes within this: the database timeout, and some. */
const ANSWER_WITHIN_MS = TIMEOUT_MS + 2000;
/** /readyz answers within this whatever the network does. */
const READYZ_WITHIN_MS = 3000;

interface Timed {
  readonly response: RawResponse;
  readonly elapsedMs: number;
}

/** An answer and how long it took; no answer within `limitMs` fails the request. */
async function timed(send: (timeoutMs: number) => Promise<RawResponse>, limitMs = ANSWER_WITHIN_MS + 2000): Promise<Timed> {
  const start = Date.now();
  const response = await send(limitMs);
  return { response, elapsedMs: Date.now() - start };
}

/** Sends every request at once; each answer with its time, by name. */
async function allTimed<Name extends string>(sends: Record<Name, (timeoutMs: number) => Promise<RawResponse>>): Promise<Record<Name, Timed>> {
  const entries = await Promise.all(
    (Object.entries(sends) as [Name, (timeoutMs: number) => Promise<RawResponse>][]).map(async ([name, send]) => [name, await timed(send)] as const),
  );
  return Object.fromEntries(entries) as Record<Name, Timed>;
}

/** What a test says of each answer: status, Retry-After, media type, the error code in it, and whether it came in time. */
function outcomes<Name extends string>(answers: Record<Name, Timed>, names: readonly Name[]) {
  return Object.fromEntries(
    names.map((name) => {
      const { response, elapsedMs } = answers[name];
      const type = (response.headers['content-type'] ?? '').split(';', 1)[0];
      const error = type === 'application/json' ? (JSON.parse(response.body) as { error?: string }).error : /temporarily_unavailable/u.exec(response.body)?.[0];
      return [name, { status: response.status, retryAfter: response.headers['retry-after'], type, error, inTime: elapsedMs <= ANSWER_WITHIN_MS }];
    }),
  );
}

const UNAVAILABLE = { status: 503, retryAfter: '5', inTime: true };

/** The cookies of `previous` updated by an answer's Set-Cookie lines. */
function cookiesOf(response: RawResponse, previous = ''): string {
  const jar = new Map(previous === '' ? [] : previous.split('; ').map((pair) => [pair.slice(0, pair.indexOf('=')), pair] as const));
  for (const line of response.headers['set-cookie'] ?? []) {
    const pair = line.split(';', 1)[0] ?? '';
    jar.set(pair.slice(0, pair.indexOf('=')), pair);
  }
  return [...jar.values()].join('; ');
}

/** A form's CSRF token. */
function csrfOf(page: RawResponse): string {
  const found = /name="csrf" value="([^"]+)"/u.exec(page.body)?.[1];
  if (found === undefined) throw new Error(`no csrf field in the page (${page.status})`);
  return found;
}

/** PostgreSQL reached through a proxy that resets connections or silently drops every packet. */
function outageSuite(backend: Backend) {
  let proxy: TcpProxy | undefined;
  const logs = captureLogs();
  const suite = issuerSuite(
    backend,
    async (database) => {
      const direct = new URL(database.databaseUrl ?? '');
      proxy = await TcpProxy.start({ host: direct.hostname, port: Number(direct.port || 5432) });
      const throughProxy = new URL(direct);
      throughProxy.port = String(proxy.port);
      return { DATABASE_URL: throughProxy.toString(), DATABASE_TIMEOUT_MS: String(TIMEOUT_MS), LOG_LEVEL: 'warn' };
    },
    { logger: (config) => logs.logger(config.logLevel) },
  );
  // after the suite's own afterAll (jest runs them in order): the issuer has closed by then
  afterAll(async () => {
    await proxy?.close();
  });

  /** Client-credentials clients never used before their outage: their lookup needs the database. */
  const machines: Partial<Record<ProxyMode, Credentials>> = {};
  let app: Credentials;
  let web: Credentials;
  let admin: Credentials;

  beforeAll(async () => {
    const { clients, users } = suite.issuer.stores;
    for (const mode of ['reset', 'blackhole'] as const) {
      machines[mode] = await registerClient(clients, { name: `machine-${mode}`, grants: ['client_credentials'], scopes: ['orders:read'], resources: [ORDERS] });
    }
    app = await registerClient(clients, { name: 'app', grants: ['password', 'refresh_token'], scopes: ['orders:read'], resources: [ORDERS] });
    web = await registerClient(clients, { name: 'web', grants: ['authorization_code'], scopes: ['openid'], redirectUris: [REDIRECT_URI], resources: [ORDERS] });
    admin = await registerClient(clients, { name: 'admin', grants: ['client_credentials'], scopes: ['sigil:admin', 'sigil:read'], resources: [`${suite.issuer.issuer}/admin`] });
    await createUser(users, { username: 'olga', password: PASSWORD }, new PasswordHasher({ memoryKib: 19_456, timeCost: 2, parallelism: 1 }));
  });

  const url = (path: string) => `${suite.issuer.url}${path}`;
  const form = (path: string, body: Record<string, string>, client?: Credentials) => (timeoutMs: number) =>
    request(url(path), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(client === undefined ? {} : { authorization: basicAuth(client.id, client.secret) }) },
      body: new URLSearchParams(body).toString(),
      timeoutMs,
    });
  const get = (path: string, headers: Record<string, string> = {}) => (timeoutMs: number) => request(url(path), { headers, timeoutMs });
  /** A POST of Sigil's own: the admin API's JSON, or an interaction's form as a browser sends it. */
  const send = (path: string, headers: Record<string, string>, body: string) => (timeoutMs: number) => request(url(path), { method: 'POST', headers, body, timeoutMs });
  const adminGet = (token: string) => get('/admin/v1/clients?limit=2', { authorization: `Bearer ${token}` });
  const adminPost = (token: string, username: string) =>
    send('/admin/v1/users', { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, JSON.stringify({ username, password: 'a long enough password' }));
  const feed = () => get('/token/revocations', { authorization: basicAuth(app.id, app.secret) });
  const formPost = (path: string, cookie: string, fields: Record<string, string>) =>
    send(path, { accept: 'text/html', cookie, 'content-type': 'application/x-www-form-urlencoded' }, new URLSearchParams(fields).toString());
  const authorizePath = `/auth?${new URLSearchParams({ client_id: 'web', response_type: 'code', redirect_uri: REDIRECT_URI, scope: 'openid', code_challenge: CHALLENGE, code_challenge_method: 'S256' }).toString()}`;
  const authorize = () => get(authorizePath.replace('client_id=web', `client_id=${web.id}`));
  const pushAuthorizationRequest = () =>
    form('/request', { client_id: web.id, response_type: 'code', redirect_uri: REDIRECT_URI, scope: 'openid', code_challenge: CHALLENGE, code_challenge_method: 'S256' }, web);
  const passwordGrant = () => form('/token', { grant_type: 'password', username: 'olga', password: PASSWORD }, app);

  /** An authorization request's interaction: its path, cookies and form's CSRF token. */
  async function startInteraction(path: string, cookie = '') {
    const started = await get(path, { cookie })(ANSWER_WITHIN_MS);
    expect(started.status).toBe(303);
    const location = started.headers.location ?? '';
    const cookies = cookiesOf(started, cookie);
    const page = await get(location, { accept: 'text/html', cookie: cookies })(ANSWER_WITHIN_MS);
    expect(page.status).toBe(200);
    return { path: location, cookies, csrf: csrfOf(page) };
  }

  /**
   * A refresh token, a sign-in in progress (its page and cookies), a login form and a consent
   * form ready to post, and an admin API token, made while the database is reachable.
   */
  async function beforeTheOutage() {
    const issued = await passwordGrant()(ANSWER_WITHIN_MS);
    expect(issued.status).toBe(200);
    const { refresh_token: refreshToken, access_token: accessToken } = JSON.parse(issued.body) as { refresh_token: string; access_token: string };
    const started = await authorize()(ANSWER_WITHIN_MS);
    expect(started.status).toBe(303);
    const cookies = (started.headers['set-cookie'] ?? []).map((cookie) => cookie.split(';', 1)[0]).join('; ');
    const authorizeWeb = authorizePath.replace('client_id=web', `client_id=${web.id}`);
    const login = await startInteraction(authorizeWeb);
    // signed in on another interaction: its consent form
    const signing = await startInteraction(authorizeWeb);
    const signedIn = await formPost(`${signing.path}/login`, signing.cookies, { csrf: signing.csrf, username: 'olga', password: PASSWORD })(ANSWER_WITHIN_MS);
    expect(signedIn.status).toBe(303);
    const resume = new URL(signedIn.headers.location ?? '', suite.issuer.url);
    const consent = await startInteraction(`${resume.pathname}${resume.search}`, cookiesOf(signedIn, signing.cookies));
    expect(consent.path).not.toBe(signing.path);
    return { refreshToken, accessToken, interaction: started.headers.location ?? '', cookies, login, consent, adminToken: await adminToken(suite.issuer.issuer, admin) };
  }

  it.each(['reset', 'blackhole'] as const)(
    'while the database connection is cut (%s), every endpoint that needs it answers 503 temporarily_unavailable with Retry-After in bounded time, the others keep answering; once it is back, requests succeed without a restart',
    async (mode) => {
      const machine = ready(machines[mode]);
      const relay = ready(proxy);
      const before = await beforeTheOutage();
      const errorsBefore = logs.lines.filter((line) => (JSON.parse(line) as { level: number }).level >= 50).length;

      relay.setMode(mode);
      try {
        const answers = await allTimed({
          clientCredentials: form('/token', { grant_type: 'client_credentials', scope: 'orders:read' }, machine),
          password: passwordGrant(),
          refresh: form('/token', { grant_type: 'refresh_token', refresh_token: before.refreshToken }, app),
          introspection: form('/token/introspection', { token: before.refreshToken }, app),
          code: form('/token', { grant_type: 'authorization_code', code: 'c'.repeat(43), redirect_uri: REDIRECT_URI, code_verifier: 'v'.repeat(43) }, web),
          revocation: form('/token/revocation', { token: before.refreshToken }, app),
          userinfo: form('/me', { access_token: 'a'.repeat(43) }),
          pushed: pushAuthorizationRequest(),
          auth: authorize(),
          page: get(before.interaction, { accept: 'text/html', cookie: before.cookies }),
          endSession: get('/session/end', { accept: 'text/html' }),
          readyz: get('/readyz'),
          jwks: get('/jwks'),
          discovery: get('/.well-known/openid-configuration'),
          healthz: get('/healthz'),
          adminGet: adminGet(before.adminToken),
          adminPost: adminPost(before.adminToken, `outage-${mode}`),
          feed: feed(),
          loginForm: formPost(`${before.login.path}/login`, before.login.cookies, { csrf: before.login.csrf, username: 'olga', password: PASSWORD }),
          consentForm: formPost(`${before.consent.path}/consent`, before.consent.cookies, { csrf: before.consent.csrf, decision: 'allow' }),
        });
        const json = ['clientCredentials', 'password', 'refresh', 'introspection', 'code', 'revocation', 'userinfo', 'pushed', 'adminGet', 'adminPost', 'feed'] as const;
        const pages = ['auth', 'page', 'endSession', 'loginForm', 'consentForm'] as const;
        expect(outcomes(answers, json)).toEqual(Object.fromEntries(json.map((name) => [name, { ...UNAVAILABLE, type: 'application/json', error: 'temporarily_unavailable' }])));
        expect(outcomes(answers, pages)).toEqual(Object.fromEntries(pages.map((name) => [name, { ...UNAVAILABLE, type: 'text/html', error: 'temporarily_unavailable' }])));
        for (const name of pages) {
          expect(answers[name].response.headers['content-security-policy']).toContain("frame-ancestors 'none'");
          expect(answers[name].response.headers['x-content-type-options']).toBe('nosniff');
        }
        const { readyz, jwks, discovery, healthz } = answers;
        expect({ status: readyz.response.status, retryAfter: readyz.response.headers['retry-after'] }).toEqual({ status: 503, retryAfter: '5' });
        expect(readyz.elapsedMs).toBeLessThanOrEqual(READYZ_WITHIN_MS);
        for (const answer of [jwks, discovery, healthz]) expect(answer.response.status).toBe(200);
        // a resource server that fetches the keys now still verifies the tokens issued before
        const { payload } = await jwtVerify(before.accessToken, createRemoteJWKSet(new URL(url('/jwks'))), { issuer: suite.issuer.issuer, audience: ORDERS, typ: 'at+jwt' });
        expect(payload).toMatchObject({ client_id: app.id });
      } finally {
        relay.setMode('pass');
      }

      // back: the very next requests succeed (dead connections were dropped, not handed out), the refresh token still works
      const recovered = await Promise.all([
        timed(form('/token', { grant_type: 'client_credentials', scope: 'orders:read' }, machine)),
        timed(passwordGrant()),
        timed(form('/token', { grant_type: 'refresh_token', refresh_token: before.refreshToken }, app)),
        timed(get(before.interaction, { accept: 'text/html', cookie: before.cookies })),
        timed(pushAuthorizationRequest()),
        timed(adminGet(before.adminToken)),
        timed(feed()),
        timed(formPost(`${before.login.path}/login`, before.login.cookies, { csrf: before.login.csrf, username: 'olga', password: PASSWORD })),
      ]);
      expect(recovered.map((answer) => answer.response.status)).toEqual([200, 200, 200, 200, 201, 200, 200, 303]);
      await eventually(async () => ((await get('/readyz')(READYZ_WITHIN_MS)).status === 200 ? true : undefined), TIMEOUT_MS * 3);
      // no server_error, no unhandled error: an outage is logged as warnings
      expect(logs.lines.filter((line) => (JSON.parse(line) as { level: number }).level >= 50)).toHaveLength(errorsBefore);
    },
    30_000,
  );

  it('while packets are dropped, /readyz asked many times at once answers 503 within its bound each time, with one probe in flight', async () => {
    const relay = ready(proxy);
    relay.setMode('blackhole');
    try {
      const connectionsBefore = relay.connections;
      const answers = await Promise.all(Array.from({ length: 20 }, () => timed(get('/readyz'))));
      for (const answer of answers) {
        expect(answer.response.status).toBe(503);
        expect(answer.elapsedMs).toBeLessThanOrEqual(READYZ_WITHIN_MS);
      }
      // the probe shares one connection at most (the change feed's heartbeat may add one)
      expect(relay.connections - connectionsBefore).toBeLessThanOrEqual(2);
    } finally {
      relay.setMode('pass');
    }
    await eventually(async () => ((await get('/readyz')(READYZ_WITHIN_MS)).status === 200 ? true : undefined), TIMEOUT_MS * 3);
  });
}

const postgres = backends.find((backend) => backend.name === 'postgres');
// the embedded database lives in the issuer's own process: there is no network to cut
if (postgres === undefined) describe.skip('database outages (PostgreSQL only: TEST_DATABASE_URL is unset)', () => it.todo('runs with TEST_DATABASE_URL'));
else describe('database outages (postgres)', () => outageSuite(postgres));
