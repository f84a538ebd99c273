import http from 'node:http';

import { createUser } from '../../src/domain/users.js';
import { PasswordHasher } from '../../src/domain/passwords.js';
import type { DomainStores as Stores } from '../../src/domain/stores.js';
import { adminToken } from './admin-api.js';
import { basicAuth, type RawResponse } from './http.js';
import { registerClient, type Credentials } from './oauth.js';

/** mulberry32: a small seeded PRNG, so that a failing request can be reproduced from its seed and index. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A request exactly as sent: the path may carry latin1 bytes, the body any bytes. */
export interface FuzzRequest {
  readonly label: string;
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body?: Buffer;
}

/** What the fuzzer aims at: real clients, a real user and live interactions, so mutations reach deep paths. */
export interface FuzzTarget {
  readonly url: string;
  readonly machine: Credentials;
  readonly app: Credentials;
  readonly web: Credentials;
  readonly username: string;
  readonly password: string;
  readonly refreshToken: string;
  readonly login: { readonly uid: string; readonly cookie: string; readonly csrf: string };
  readonly consent: { readonly uid: string; readonly cookie: string; readonly csrf: string };
  readonly session: { readonly cookie: string; readonly xsrf: string };
  /** An interaction of its own for the resume route, which ends the interaction it resumes. */
  readonly resume: { readonly uid: string; readonly cookie: string };
  /** An access token for the admin API (scopes sigil:admin and sigil:read). */
  readonly adminToken: string;
  /** A client of its own for the admin API's GET and PATCH of one client (a mutation may disable or delete it). */
  readonly patched: Credentials;
}

const ORDERS = 'http://localhost:4001';
const REDIRECT = 'http://127.0.0.1:9/cb';
const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGEzKuO0ng';

/** One HTTP request over a fresh connection, sent byte for byte as described. */
export function send(url: string, request: FuzzRequest): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const { hostname, port } = new URL(url);
    const headers = request.body === undefined ? request.headers : { 'content-length': String(request.body.length), ...request.headers };
    const outgoing = http.request({ hostname, port, method: request.method, path: request.path, headers, agent: false }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    outgoing.on('error', reject);
    outgoing.setTimeout(15_000, () => outgoing.destroy(new Error(`no answer to ${request.label} within 15 s`)));
    outgoing.end(request.body);
  });
}

function cookiesOf(response: RawResponse, previous = ''): string {
  const jar = new Map(previous === '' ? [] : previous.split('; ').map((pair) => [pair.slice(0, pair.indexOf('=')), pair] as const));
  for (const line of response.headers['set-cookie'] ?? []) {
    const pair = line.slice(0, line.indexOf(';'));
    jar.set(pair.slice(0, pair.indexOf('=')), pair);
  }
  return [...jar.values()].join('; ');
}

function hidden(html: string, name: string): string {
  const found = new RegExp(`name="${name}" value="([^"]+)"`, 'u').exec(html);
  if (found?.[1] === undefined) throw new Error(`no ${name} field in the page`);
  return found[1];
}

function form(fields: Record<string, string>): Buffer {
  return Buffer.from(new URLSearchParams(fields).toString());
}

const get = (path: string, cookie = ''): FuzzRequest => ({ label: `GET ${path}`, method: 'GET', path, headers: cookie === '' ? {} : { cookie } });
const post = (path: string, body: Buffer, headers: Record<string, string> = {}): FuzzRequest => ({
  label: `POST ${path}`,
  method: 'POST',
  path,
  headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
  body,
});

const authorizationQuery = (web: Credentials, extra: Record<string, string> = {}) =>
  new URLSearchParams({ client_id: web.id, response_type: 'code', redirect_uri: REDIRECT, scope: 'openid orders:read', code_challenge: CHALLENGE, code_challenge_method: 'S256', state: 's1', nonce: 'n1', ...extra }).toString();

/** Starts an authorization request and answers its interaction's uid, cookies and page. */
async function interaction(url: string, path: string, cookie = ''): Promise<{ uid: string; cookie: string; page: string }> {
  const started = await send(url, get(path, cookie));
  const location = started.headers.location ?? '';
  const uid = /^\/interaction\/([^/?]+)/u.exec(location)?.[1];
  if (uid === undefined) throw new Error(`${path} did not start an interaction: ${started.status} ${location}`);
  const cookies = cookiesOf(started, cookie);
  const page = await send(url, get(location, cookies));
  return { uid, cookie: cookies, page: page.body };
}

/** Registers the fuzzer's clients and user, and opens a login interaction, a consent interaction and a session. */
export async function prepareTarget(url: string, stores: Stores): Promise<FuzzTarget> {
  const machine = await registerClient(stores.clients, { name: 'fuzz-machine', grants: ['client_credentials'], scopes: ['orders:read'], resources: [ORDERS] });
  const app = await registerClient(stores.clients, { name: 'fuzz-app', grants: ['password', 'refresh_token'], scopes: ['orders:read'], resources: [ORDERS], firstParty: true });
  const web = await registerClient(stores.clients, { name: 'fuzz-web', grants: ['authorization_code', 'refresh_token'], scopes: ['openid', 'orders:read'], redirectUris: [REDIRECT], resources: [ORDERS] });
  const username = 'fuzz-user';
  const password = 'correct horse battery';
  await createUser(stores.users, { username, password }, new PasswordHasher({ memoryKib: 19_456, timeCost: 2, parallelism: 1 }));
  const tokens = await send(url, post('/token', form({ grant_type: 'password', username, password }), { authorization: basicAuth(app.id, app.secret) }));
  const refreshToken = (JSON.parse(tokens.body) as { refresh_token?: string }).refresh_token ?? '';

  const login = await interaction(url, `/auth?${authorizationQuery(web)}`);
  // a second request signs in, which leads to its consent interaction and gives a session
  const signing = await interaction(url, `/auth?${authorizationQuery(web, { state: 's2' })}`);
  const signedIn = await send(url, post(`/interaction/${signing.uid}/login`, form({ csrf: hidden(signing.page, 'csrf'), username, password }), { cookie: signing.cookie }));
  const consent = await interaction(url, signedIn.headers.location ?? '', cookiesOf(signedIn, signing.cookie));
  const logout = await send(url, get('/session/end', consent.cookie));
  const resume = await interaction(url, `/auth?${authorizationQuery(web, { state: 's3' })}`);
  const admin = await registerClient(stores.clients, { name: 'fuzz-admin', grants: ['client_credentials'], scopes: ['sigil:admin', 'sigil:read'], resources: [`${url}/admin`] });
  const patched = await registerClient(stores.clients, { name: 'fuzz-patched', grants: ['client_credentials'], scopes: ['orders:read'], resources: [ORDERS] });
  return {
    url,
    machine,
    app,
    web,
    username,
    password,
    refreshToken,
    login: { uid: login.uid, cookie: login.cookie, csrf: hidden(login.page, 'csrf') },
    consent: { uid: consent.uid, cookie: consent.cookie, csrf: hidden(consent.page, 'csrf') },
    session: { cookie: consent.cookie, xsrf: hidden(logout.body, 'xsrf') },
    resume: { uid: resume.uid, cookie: resume.cookie },
    adminToken: await adminToken(url, admin),
    patched,
  };
}

/** A request before mutation: its parameters in order (they are encoded when it is built). */
interface Template {
  readonly method: string;
  readonly path: string;
  /** Where the parameters go: the query, a form body, or a JSON body (an object of strings). */
  readonly into: 'query' | 'body' | 'json';
  readonly params: [string, string][];
  readonly headers: Record<string, string>;
}

/** The endpoints and pages, each a well-formed request the mutations start from. */
function templates(target: FuzzTarget): Template[] {
  const { machine, app, web, login, consent, session } = target;
  const basic = (client: Credentials) => ({ authorization: basicAuth(client.id, client.secret) });
  const auth: [string, string][] = [...new URLSearchParams(authorizationQuery(web, { login_hint: target.username, resource: ORDERS }))];
  const body = (path: string, params: [string, string][], headers: Record<string, string> = {}): Template => ({ method: 'POST', path, into: 'body', params, headers });
  const query = (path: string, params: [string, string][] = [], headers: Record<string, string> = {}): Template => ({ method: 'GET', path, into: 'query', params, headers });
  const json = (method: string, path: string, params: [string, string][], headers: Record<string, string> = {}): Template => ({
    method,
    path,
    into: 'json',
    params,
    headers: { 'content-type': 'application/json', ...headers },
  });
  const admin = { authorization: `Bearer ${target.adminToken}` };
  const par = auth.filter(([name]) => name !== 'client_id');
  return [
    body('/token', [['grant_type', 'client_credentials'], ['scope', 'orders:read'], ['resource', ORDERS]], basic(machine)),
    body('/token', [['grant_type', 'client_credentials'], ['client_id', machine.id], ['client_secret', machine.secret]]),
    body('/token', [['grant_type', 'password'], ['username', target.username], ['password', 'wrong password'], ['scope', 'orders:read']], basic(app)),
    body('/token', [['grant_type', 'refresh_token'], ['refresh_token', target.refreshToken]], basic(app)),
    body('/token', [['grant_type', 'authorization_code'], ['code', 'c0de'], ['redirect_uri', REDIRECT], ['code_verifier', 'v'.repeat(43)]], basic(web)),
    body('/token/introspection', [['token', target.refreshToken], ['token_type_hint', 'refresh_token']], basic(machine)),
    body('/token/revocation', [['token', 'not-a-token'], ['token_type_hint', 'refresh_token']], basic(machine)),
    query('/me', [], { authorization: 'Bearer not-a-token' }),
    body('/me', [['access_token', 'not-a-token']]),
    query('/auth', auth),
    body('/auth', auth),
    body('/request', auth.filter(([name]) => name !== 'client_id'), basic(web)),
    query('/session/end', [['client_id', web.id], ['state', 'x']], { cookie: session.cookie }),
    body('/session/end/confirm', [['xsrf', session.xsrf], ['logout', 'yes']], { cookie: session.cookie }),
    query(`/interaction/${login.uid}`, [], { cookie: login.cookie }),
    body(`/interaction/${login.uid}/login`, [['csrf', login.csrf], ['username', target.username], ['password', 'wrong password']], { cookie: login.cookie }),
    body(`/interaction/${consent.uid}/consent`, [['csrf', consent.csrf], ['decision', 'deny']], { cookie: consent.cookie }),
    query('/jwks'),
    query('/.well-known/openid-configuration'),
    query('/.well-known/oauth-authorization-server'),
    query('/healthz'),
    query('/readyz'),
    query('/metrics'),
    query('/no/such/path', [['x', '1']]),
    query(`/auth/${target.resume.uid}`, [], { cookie: target.resume.cookie }),
    // pushed authorization requests (client_secret_post too), and /auth naming one that does not exist
    body('/request', [...par, ['client_id', web.id], ['client_secret', web.secret]]),
    query('/auth', [['client_id', web.id], ['request_uri', 'urn:ietf:params:oauth:request_uri:fuzz-0000']]),
    query('/.well-known/jwks.json'),
    // the revocation feed: odd cursors (an overflowing, a negative, a malformed one), with and without client authentication
    query('/token/revocations', [['since', '0-0']], basic(machine)),
    query('/token/revocations', [['since', '18446744073709551616-9223372036854775808']], basic(machine)),
    query('/token/revocations', [['since', '-1']]),
    body('/token/revocations', [['since', '1-1'], ['client_id', machine.id], ['client_secret', machine.secret]]),
    // the admin API: lists with odd limits and cursors, writes with JSON bodies, with a real admin token and without one
    query('/admin/v1/clients', [['limit', '2'], ['cursor', 'not-a-cursor']], admin),
    query('/admin/v1/users', [['limit', '0']], admin),
    query('/admin/v1/audit-events', [['limit', '1000001'], ['cursor', '']], admin),
    query('/admin/v1/api-keys', [['limit', '-1']]),
    // the sacrificial client: an odd method on it with the admin token (DELETE) removes it, and nothing else depends on it
    query(`/admin/v1/clients/${target.patched.id}`, [], admin),
    // a password too short: the body is read and checked field by field, and never costs an argon2id hash
    json('POST', '/admin/v1/users', [['username', 'fuzz-created'], ['password', 'short']], admin),
    json('POST', '/admin/v1/clients', [['name', 'fuzz-created'], ['grants', 'client_credentials']], admin),
    json('PATCH', `/admin/v1/clients/${target.patched.id}`, [['name', 'fuzz-renamed']], admin),
    json('PATCH', `/admin/v1/clients/${target.patched.id}`, [['name', 'fuzz-renamed']]),
  ];
}

type Random = () => number;
const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;

/** Percent-escaped insertions that are not acceptable text: controls, C1, invalid UTF-8, broken escapes. */
const BAD_ESCAPES = ['%00', '%01', '%07', '%09', '%0A', '%0D', '%1B', '%1F', '%7F', '%C2%85', '%C2%9B', '%FF', '%FE', '%C3%28', '%C0%AF', '%E0%80%AF', '%ED%A0%80', '%F4%90%80%80', '%E2%82', '%F0%9F%98', '%80', '%G1', '%', '%0'];
/** Raw bytes where only encoded text belongs. */
const BAD_BYTES = [0x00, 0x01, 0x0a, 0x0d, 0x1b, 0x7f, 0x80, 0xc0, 0xff, 0xfe];

const encode = (value: string) => encodeURIComponent(value);

/** The parameters as encoded text, with one insertion placed raw (already encoded) in `at`'s value. */
function encoded(params: [string, string][], at = -1, raw = '', inName = false): string {
  return params
    .map(([name, value], i) => {
      if (i !== at) return `${encode(name)}=${encode(value)}`;
      const middle = Math.floor(value.length / 2);
      return inName ? `${encode(name)}${raw}=${encode(value)}` : `${encode(name)}=${encode(value.slice(0, middle))}${raw}${encode(value.slice(middle))}`;
    })
    .join('&');
}

/** Percent escapes turned into the bytes they stand for (as latin1 characters); a broken one stays as it is. */
const unescaped = (raw: string) => raw.replace(/%([0-9A-Fa-f]{2})/gu, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));

/** The parameters as a JSON object of strings, with one insertion placed raw (its escapes as bytes) inside `at`'s value or name. */
function jsonEncoded(params: [string, string][], at = -1, raw = '', inName = false): string {
  const members = params.map(([name, value], i) => {
    if (i !== at) return `${JSON.stringify(name)}:${JSON.stringify(value)}`;
    const insert = unescaped(raw);
    if (inName) return `${JSON.stringify(name).slice(0, -1)}${insert}":${JSON.stringify(value)}`;
    const middle = Math.floor(value.length / 2);
    return `${JSON.stringify(name)}:${JSON.stringify(value.slice(0, middle)).slice(0, -1)}${insert}${JSON.stringify(value.slice(middle)).slice(1)}`;
  });
  return `{${members.join(',')}}`;
}

/** A template's parameters in its own encoding (form or JSON), with one insertion as {@link encoded} places it. */
function serialized(t: Template, params: [string, string][], at = -1, raw = '', inName = false): string {
  return t.into === 'json' ? jsonEncoded(params, at, raw, inName) : encoded(params, at, raw, inName);
}

interface Mutated {
  kind: string;
  text?: string;
  bytes?: Buffer;
  headers?: Record<string, string>;
  method?: string;
  path?: string;
}

const MUTATIONS: ((random: Random, template: Template) => Mutated)[] = [
  (random, t) => {
    const at = Math.floor(random() * t.params.length);
    return { kind: 'bad escape', text: serialized(t, t.params, at, pick(random, BAD_ESCAPES), random() < 0.15) };
  },
  (random, t) => {
    const text = serialized(t, t.params);
    const at = Math.floor(random() * (text.length + 1));
    const bytes = Buffer.concat([Buffer.from(text.slice(0, at)), Buffer.from([pick(random, BAD_BYTES)]), Buffer.from(text.slice(at))]);
    return { kind: 'raw byte', bytes };
  },
  (random, t) => {
    const at = Math.floor(random() * t.params.length);
    return { kind: 'overlong value', text: serialized(t, t.params, at, 'a'.repeat(pick(random, t.into === 'query' ? [4097, 9000] : [4097, 9000, 50_000, 70_000]))) };
  },
  (random, t) => {
    const repeated = pick(random, t.params.length === 0 ? [['x', '1'] as [string, string]] : t.params);
    return { kind: 'repeated parameter', text: serialized(t, [...t.params, repeated]) };
  },
  (random, t) => ({ kind: 'many parameters', text: serialized(t, [...t.params, ...Array.from({ length: 150 + Math.floor(random() * 200) }, (_, i): [string, string] => [`p${i}`, 'v'])]) }),
  (random, t) => ({
    kind: 'wrong content type',
    method: t.method === 'GET' ? 'POST' : t.method,
    text: serialized(t, t.params),
    headers: { 'content-type': pick(random, ['application/json', 'text/plain', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded; charset=utf-16', 'application/x-www-form-urlencoded; charset=iso-8859-1', 'x/y', '']) },
  }),
  (random, t) => {
    const values = Object.fromEntries(t.params.map(([name, value]) => [name, random() < 0.5 ? `${value}\u0000` : [value, { $ne: 1 }]]));
    return { kind: 'JSON body', method: t.method === 'GET' ? 'POST' : t.method, bytes: Buffer.from(random() < 0.8 ? JSON.stringify(values) : '{"broken":'), headers: { 'content-type': 'application/json' } };
  },
  (random) => {
    const broken = pick(random, [
      'Basic !!!',
      'Basic',
      'Basic ',
      `Basic ${Buffer.from('id%00:secret').toString('base64')}`,
      `Basic ${Buffer.from('id\u0000:sec\u0000ret').toString('base64')}`,
      `Basic ${Buffer.from([0x69, 0xff, 0x3a, 0xc3, 0x28]).toString('base64')}`,
      `Basic ${Buffer.from('%ZZ:%').toString('base64')}`,
      `Basic ${Buffer.from(`${'a'.repeat(6000)}:b`).toString('base64')}`,
      'Basic \u00e9\u00ff',
      'Bearer \u0080\u00ff',
      'Bearer\ttoken',
      'Digest x',
    ]);
    return { kind: 'broken Authorization', headers: { authorization: broken } };
  },
  (random) => ({ kind: 'huge header', headers: { [pick(random, ['x-fuzz', 'authorization', 'cookie', 'user-agent'])]: `Bearer ${'h'.repeat(9000 + Math.floor(random() * 3000))}` } }),
  (random) => {
    const value = pick(random, ['%00', '\u00ff\u00fe', 'a\tb', 'x'.repeat(5000), '', '"', 'abc.def', '=====']);
    return { kind: 'broken cookie', headers: { cookie: `${pick(random, ['_session', '_interaction', '_interaction_resume', '_session.sig', '_interaction.sig', 'other'])}=${value}` } };
  },
  (random) => ({ kind: 'odd method', method: pick(random, ['PUT', 'DELETE', 'PATCH', 'OPTIONS', 'PROPFIND', 'HEAD', 'TRACE']) }),
  (random, t) => {
    const segment = pick(random, ['%00', '%FF', '%C0%AF', '\u00ff', '%E2%82', '%2e%2e', '..', '%0A']);
    return { kind: 'bad path', path: `${t.path}${pick(random, ['/', ''])}${segment}` };
  },
];

/** `path` with its spaces, controls and bytes above 0x7e percent-escaped: node refuses them raw. */
function escapedTarget(path: string): string {
  return [...path].map((char) => (char > ' ' && char < '\u007f' ? char : `%${char.charCodeAt(0).toString(16).padStart(2, '0')}`)).join('');
}

/** The `count` mutated requests of `seed`, always the same ones. */
export function* fuzzRequests(target: FuzzTarget, count: number, seed: number): Generator<FuzzRequest> {
  const random = mulberry32(seed);
  const all = templates(target);
  for (let i = 0; i < count; i += 1) {
    const template = all[i % all.length] as Template;
    const mutation = pick(random, MUTATIONS)(random, template);
    const payload = mutation.bytes ?? Buffer.from(mutation.text ?? serialized(template, template.params), 'latin1');
    const method = mutation.method ?? template.method;
    const base = mutation.path ?? template.path;
    const inQuery = template.into === 'query' && method !== 'POST';
    const path = inQuery && payload.length > 0 ? `${base}?${payload.toString('latin1')}` : base;
    const headers = { ...(template.into === 'body' || method === 'POST' ? { 'content-type': 'application/x-www-form-urlencoded' } : {}), ...template.headers, ...mutation.headers };
    const body = inQuery ? undefined : payload;
    // node's own parser refuses raw bytes in a request target before any listener: they are sent escaped
    yield { label: `#${i} ${mutation.kind} ${method} ${base}`, method, path: escapedTarget(path), headers, ...(body === undefined ? {} : { body }) };
  }
}

const PAGE_PATHS = /^\/(?:auth(?:\/|$|\?)|interaction\/|session\/end)/u;

/** What is wrong with an answer: a 5xx, a 4xx API error that is not RFC 6749 JSON, a page without the security headers. */
export function problems(request: FuzzRequest, response: RawResponse): string[] {
  const found: string[] = [];
  const type = String(response.headers['content-type'] ?? '');
  if (response.status >= 500) found.push(`answered ${response.status}`);
  const page = PAGE_PATHS.test(request.path);
  if (!page && response.status >= 400 && response.status < 500 && request.method !== 'HEAD') {
    let error: unknown;
    try {
      error = (JSON.parse(response.body) as { error?: unknown }).error;
    } catch {
      error = undefined;
    }
    if (!type.startsWith('application/json') || typeof error !== 'string') found.push(`a ${response.status} that is not RFC 6749 JSON (${type})`);
  }
  if (type.startsWith('text/html')) {
    const csp = String(response.headers['content-security-policy'] ?? '');
    if (!csp.includes("frame-ancestors 'none'")) found.push('an HTML page without frame-ancestors \'none\'');
    if (response.headers['x-content-type-options'] !== 'nosniff') found.push('an HTML page without X-Content-Type-Options');
  }
  return found;
}

/** Sends every request, `concurrency` at a time, and answers each problem found, with the request's label. */
export async function fuzz(url: string, requests: Iterable<FuzzRequest>, concurrency = 8): Promise<{ sent: number; problems: string[] }> {
  const iterator = requests[Symbol.iterator]();
  const found: string[] = [];
  let sent = 0;
  const worker = async () => {
    for (let next = iterator.next(); next.done !== true; next = iterator.next()) {
      const request = next.value;
      sent += 1;
      try {
        for (const problem of problems(request, await send(url, request))) found.push(`${request.label}: ${problem}`);
      } catch (error) {
        found.push(`${request.label}: no answer (${(error as Error).message})`);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { sent, problems: found };
}
