// @ts-check
/**
 * Between set-up and the first measurement: the requests the workloads send (from the
 * provisioned credentials and the issuer's discovery), an access token for the guarded rows and
 * one for the admin API, the preflight (one request of each kind, so a failure shows with its
 * body before any load), and the refresh workload's pool of refresh tokens.
 */
import { randomBytes } from 'node:crypto';

import { ADMIN_API_PATH, adminToken, JSON_TYPE, machineClientBody } from '../lib/admin.js';
import { asRecord, basic, FORM, form, once } from '../lib/http.js';
import { pooled } from '../lib/provision.js';
import { AUDIENCE } from '../setup.js';
import { check } from './measure.js';
import { seedRefreshPool } from './refresh.js';

/** @typedef {{ method: string, headers: Record<string, string>, body: string }} Post */

/**
 * @typedef {object} Requests
 * @property {string} ccBody a client credentials grant's body (scope orders:read)
 * @property {Post} cc client credentials of the machine client (client_secret_basic)
 * @property {Post} minimal the minimal token endpoint's (no client authentication)
 * @property {Post} password the password grant, for the admin user
 * @property {string[]} passwordBodies password grants of the sign-in users, one body each (see signInUsers)
 * @property {Record<string, string>} refreshAuth the refresh client's authorization and content type
 * @property {Record<string, string>} bearer an access token of the machine client
 * @property {Record<string, string>} apiKey
 * @property {Record<string, string>} admin an admin API access token of the admin client (scope sigil:admin), and the JSON content type
 * @property {string[]} manyAuthorizations Basic authorizations of the many-clients workload's clients, in creation order
 */

/**
 * Users the password grant and the refresh pool's seeding sign in as, round-robin. Many people
 * sign in at once, rarely one person many times at once: the throttle lets an account and
 * address have only a few attempts in flight (THROTTLE_POLICY), and every bench request comes
 * from 127.0.0.1, so one user signing in on 16 connections would measure the throttle's refusals.
 */
const SIGN_IN_USERS = 48;

/**
 * Creates the sign-in users over the admin API (the issuer hashes each password once).
 * @param {import('../setup.js').Stack} stack
 * @param {string} adminAccessToken
 * @returns {Promise<string[]>} a password grant's body for each
 */
async function signInUsers(stack, adminAccessToken) {
  const tag = randomBytes(3).toString('hex');
  return pooled(SIGN_IN_USERS, 8, async (index) => {
    const username = `bench-${tag}-${index}`;
    const password = randomBytes(15).toString('base64url');
    const answer = await once(`${stack.urls.issuer}${ADMIN_API_PATH}/users`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminAccessToken}`, 'content-type': JSON_TYPE },
      body: JSON.stringify({ username, password, roles: ['admin'] }),
    });
    if (!answer.ok) throw new Error(`creating sign-in user ${username} failed: ${answer.status} ${answer.text.slice(0, 300)}`);
    return form({ grant_type: 'password', username, password, scope: 'orders:read' });
  });
}

/**
 * @param {import('../setup.js').Stack} stack
 * @returns {Promise<Requests>}
 */
async function buildRequests(stack) {
  const { credentials } = stack;
  const ccBody = form({ grant_type: 'client_credentials', scope: 'orders:read' });
  const cc = { method: 'POST', headers: { authorization: basic(credentials.machine.id, credentials.machine.secret), 'content-type': FORM }, body: ccBody };
  const tokenAnswer = await once(stack.endpoints.token, cc);
  if (!tokenAnswer.ok) throw new Error(`client credentials token request failed: ${tokenAnswer.status} ${tokenAnswer.text}`);
  const accessToken = String(asRecord(JSON.parse(tokenAnswer.text))['access_token']);
  // valid for ACCESS_TOKEN_TTL (15 minutes by default), longer than the watchdog lets a run last
  const adminAccessToken = await adminToken(stack.endpoints.token, stack.urls.issuer, credentials.admin);
  return {
    ccBody,
    cc,
    minimal: { method: 'POST', headers: { 'content-type': FORM }, body: ccBody },
    password: {
      method: 'POST',
      headers: { authorization: basic(credentials.password.id, credentials.password.secret), 'content-type': FORM },
      body: form({ grant_type: 'password', username: credentials.username, password: credentials.userPassword, scope: 'orders:read' }),
    },
    passwordBodies: await signInUsers(stack, adminAccessToken),
    refreshAuth: { authorization: basic(credentials.refresh.id, credentials.refresh.secret), 'content-type': FORM },
    bearer: { authorization: `Bearer ${accessToken}` },
    apiKey: { 'x-api-key': credentials.apiKey },
    admin: { authorization: `Bearer ${adminAccessToken}`, 'content-type': JSON_TYPE },
    manyAuthorizations: stack.manyClients.map((client) => basic(client.id, client.secret)),
  };
}

/**
 * One request of each kind (the refresh grant's comes with its pool).
 * @param {import('./measure.js').Preflight} preflight
 * @param {import('../setup.js').Stack} stack
 * @param {Requests} requests
 */
async function runPreflight(preflight, stack, requests) {
  const { urls, endpoints } = stack;
  await check(preflight, 'client_credentials', endpoints.token, requests.cc);
  await check(preflight, 'minimal_token', `${urls.minimal}/token`, requests.minimal);
  await check(preflight, 'engine_token', `${urls.engine}/token`, requests.cc);
  await check(preflight, 'guarded_orders', `${urls.orders}/orders`, { headers: requests.bearer });
  await check(preflight, 'unguarded_orders', `${urls.unguarded}/orders`);
  await check(preflight, 'minimal_orders', `${urls.minimalOrders}/orders`);
  await check(preflight, 'api_key_orders', `${urls.orders}/orders`, { headers: requests.apiKey });
  await check(preflight, 'jwks', endpoints.jwks);
  await check(preflight, 'discovery', endpoints.discovery);
  await check(preflight, 'password', endpoints.token, requests.password);
  await check(preflight, 'admin_create_clients', `${urls.issuer}${ADMIN_API_PATH}/clients`, { method: 'POST', headers: requests.admin, body: machineClientBody('bench-preflight', AUDIENCE) });
  const many = requests.manyAuthorizations;
  const lastOfMany = many[many.length - 1];
  if (lastOfMany !== undefined) {
    await check(preflight, `client_credentials_many_${many.length}`, endpoints.token, { method: 'POST', headers: { authorization: lastOfMany, 'content-type': FORM }, body: requests.ccBody });
  }
}

/**
 * @param {import('../setup.js').Stack} stack
 * @param {import('./measure.js').Options} options
 * @returns {Promise<import('./measure.js').Context>}
 */
export async function prepare(stack, options) {
  const requests = await buildRequests(stack);
  /** @type {import('./measure.js').Preflight} */
  const preflight = {};
  await runPreflight(preflight, stack, requests);
  const refresh = await seedRefreshPool(preflight, stack, requests, options.shape.connections * 8);
  return { options, stack, requests, preflight, refresh, rows: [], skipped: [] };
}
