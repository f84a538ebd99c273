import { beforeAll, describe, expect, it } from '@jest/globals';

import { backends } from '../support/backends.js';
import { basicAuth, type RawResponse } from '../support/http.js';
import { fuzz, fuzzRequests, prepareTarget, send, type FuzzRequest, type FuzzTarget } from '../support/fuzz.js';
import { issuerSuite } from '../support/issuer.js';

/** How many requests and which seed: `scripts/fuzz.mjs --count N --seed S` runs this suite with others. */
const COUNT = Number(process.env['FUZZ_COUNT'] ?? 2000);
const SEED = Number(process.env['FUZZ_SEED'] ?? 20261201);

/**
 * The input gate (issue "Trust under hostile input", requirement 1): seeded malformed requests
 * over every endpoint and page (NUL and control bytes, invalid UTF-8, overlong and repeated
 * parameters, wrong content types, JSON bodies, broken Basic headers and cookies, huge headers,
 * odd methods, bad paths), aimed with real clients, a real user and live interactions, at the
 * OAuth endpoints and pages, pushed authorization requests, the JWKS (and its well-known alias),
 * the revocation feed (odd cursors, with and without client authentication) and the admin API
 * (lists with odd limits and cursors, JSON writes, with a real admin token and without one).
 */
describe.each(backends)('seeded fuzzing of every endpoint and page ($name)', (backend) => {
  const suite = issuerSuite(backend);
  let target: FuzzTarget;

  beforeAll(async () => {
    target = await prepareTarget(suite.issuer.issuer, suite.issuer.stores);
  });

  it(`when ${COUNT} malformed requests arrive (seed ${SEED}), none is answered 5xx, every API error is RFC 6749 JSON and every page carries the security headers`, async () => {
    const result = await fuzz(suite.issuer.issuer, fuzzRequests(target, COUNT, SEED), 8);
    expect(result.sent).toBe(COUNT);
    expect(result.problems).toEqual([]);
  }, Math.max(240_000, COUNT * 50));

  const post = (path: string, body: string, headers: Record<string, string> = {}): FuzzRequest => ({
    label: path,
    method: 'POST',
    path,
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: Buffer.from(body, 'latin1'),
  });
  const refusedAsJson = (response: RawResponse, description: string) => {
    expect(response.status).toBe(400);
    expect(response.headers['content-type']).toMatch(/^application\/json/u);
    expect(JSON.parse(response.body)).toEqual({ error: 'invalid_request', error_description: description });
  };
  const refusedAsPage = (response: RawResponse) => {
    expect(response.status).toBe(400);
    expect(response.headers['content-type']).toMatch(/^text\/html/u);
    expect(response.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(response.headers['x-content-type-options']).toBe('nosniff');
    expect(response.body).toContain('invalid_request');
  };

  it('when a token request carries a NUL, invalid UTF-8, a repeated or an overlong parameter, the gate answers 400 invalid_request naming it', async () => {
    const machine = { authorization: basicAuth(target.machine.id, target.machine.secret) };
    refusedAsJson(await send(target.url, post('/token', 'grant_type=client_credentials&scope=orders%3Aread%00', machine)), 'the parameter "scope" contains a control character');
    refusedAsJson(await send(target.url, post('/token', 'grant_type=client_credentials&scope=%C3%28', machine)), 'the parameter "scope" is not valid UTF-8');
    refusedAsJson(await send(target.url, post('/token', 'grant_type=client_credentials&grant_type=password', machine)), 'the parameter "grant_type" is repeated');
    refusedAsJson(await send(target.url, post('/token', `grant_type=client_credentials&scope=${'a'.repeat(5000)}`, machine)), 'the parameter "scope" is too long');
    refusedAsJson(await send(target.url, post('/token', 'grant_type=client_credentials', { authorization: basicAuth(`${target.machine.id}\u0000`, 'x') })), 'a Basic credential contains a control character');
    refusedAsJson(await send(target.url, post('/token/introspection', `token=${'%FF'}`, machine)), 'the parameter "token" is not valid UTF-8');
  });

  it('when the gate lets a request through, the engine still reads its body: client credentials and a repeated resource work', async () => {
    const response = await send(target.url, post('/token', `grant_type=client_credentials&resource=${encodeURIComponent('http://localhost:4001')}&resource=${encodeURIComponent('http://localhost:4001')}`, { authorization: basicAuth(target.machine.id, target.machine.secret) }));
    expect(response.status).toBeLessThan(500);
    const ok = await send(target.url, post('/token', 'grant_type=client_credentials&scope=orders%3Aread', { authorization: basicAuth(target.machine.id, target.machine.secret) }));
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toHaveProperty('access_token');
  });

  it('when the authorization request or the end-session endpoint carries a NUL, the answer is a 400 page with the security headers', async () => {
    refusedAsPage(await send(target.url, { label: 'auth', method: 'GET', path: `/auth?client_id=${target.web.id}&state=a%00`, headers: {} }));
    refusedAsPage(await send(target.url, { label: 'end', method: 'GET', path: '/session/end?id_token_hint=a%00b', headers: { cookie: target.session.cookie } }));
    refusedAsPage(await send(target.url, post('/session/end/confirm', `xsrf=${target.session.xsrf}%00&logout=yes`, { cookie: target.session.cookie })));
  });

  it('when the login or consent form is posted as JSON (or another content type), the answer is a 400 page, not a 500', async () => {
    for (const [path, cookie] of [[`/interaction/${target.login.uid}/login`, target.login.cookie], [`/interaction/${target.consent.uid}/consent`, target.consent.cookie]] as const) {
      refusedAsPage(await send(target.url, { ...post(path, '{"csrf":"x"}', { cookie }), headers: { 'content-type': 'application/json', cookie } }));
      refusedAsPage(await send(target.url, { ...post(path, 'csrf=x', { cookie }), headers: { 'content-type': 'text/plain', cookie } }));
      refusedAsPage(await send(target.url, post(path, `csrf=${target.login.csrf}&username=a%00`, { cookie })));
    }
  });

  it('when a body is larger than the engine accepts, the gate refuses it without reading it', async () => {
    refusedAsJson(await send(target.url, post('/token', `grant_type=client_credentials&x=${'a'.repeat(60 * 1024)}`)), 'the request body is too large');
  });
});
