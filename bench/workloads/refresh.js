// @ts-check
/**
 * `refresh`: the refresh grant with rotation (RFC 6749, section 6), from a pool of refresh
 * tokens seeded by password grants. Each 200 puts its rotated token back, so every token is sent
 * once; a run's end strands at most two per connection (the one in flight and the one already
 * built for the next request).
 */
import { asRecord, form, once } from '../lib/http.js';
import { progress } from '../lib/log.js';
import { pooled } from '../lib/provision.js';
import { check, measureHttp } from './measure.js';

/**
 * @typedef {object} RefreshPool
 * @property {string[]} tokens refresh tokens not sent yet
 * @property {number} seeded how many password grants were asked for to seed it
 * @property {number} empty requests that found it empty
 */

/** The refresh token of a token answer. @param {string} text */
const refreshTokenOf = (text) => asRecord(JSON.parse(text))['refresh_token'];

/**
 * Seeds the pool with `seedCount` password grants (4 in flight), then sends one refresh grant
 * as the preflight's `refresh` and puts its rotated token back.
 * @param {import('./measure.js').Preflight} preflight
 * @param {import('../setup.js').Stack} stack
 * @param {import('./prepare.js').Requests} requests
 * @param {number} seedCount
 * @returns {Promise<RefreshPool>}
 */
export async function seedRefreshPool(preflight, stack, requests, seedCount) {
  const tokenUrl = stack.endpoints.token;
  const seeded = await pooled(seedCount, 4, async (index) => {
    const body = requests.passwordBodies[index % requests.passwordBodies.length] ?? requests.password.body;
    const answer = await once(tokenUrl, { method: 'POST', headers: requests.refreshAuth, body });
    return answer.ok ? String(refreshTokenOf(answer.text) ?? '') : `!${answer.status} ${answer.text.slice(0, 300)}`;
  });
  const seedFailure = seeded.find((token) => token === '' || token.startsWith('!'));
  if (seedFailure !== undefined) progress(`refresh pool: a password grant gave no refresh token: ${seedFailure || 'no refresh_token in the answer'}`);
  const tokens = seeded.filter((token) => token !== '' && !token.startsWith('!'));
  const token = tokens.pop() ?? '';
  const answer = await check(preflight, 'refresh', tokenUrl, { method: 'POST', headers: requests.refreshAuth, body: form({ grant_type: 'refresh_token', refresh_token: token }) });
  if (answer.ok) {
    const rotated = refreshTokenOf(answer.text);
    if (typeof rotated === 'string') tokens.push(rotated);
  }
  progress(`refresh pool seeded with ${tokens.length} tokens`);
  return { tokens, seeded: seedCount, empty: 0 };
}

/**
 * Takes the next token off the pool for each request and puts each rotated token back.
 * @param {import('./measure.js').Context} context
 * @returns {import('./measure.js').Workload}
 */
function fromPool(context) {
  const pool = context.refresh;
  return {
    url: context.stack.endpoints.token,
    method: 'POST',
    headers: context.requests.refreshAuth,
    setupRequest: (request) => {
      let token = pool.tokens.pop();
      if (token === undefined) {
        // never happens with a pool larger than the connections; if it does, it shows as 400s
        pool.empty += 1;
        token = 'bench-refresh-pool-empty';
      }
      return { ...request, body: form({ grant_type: 'refresh_token', refresh_token: token }) };
    },
    onResponse: (status, body) => {
      if (status !== 200) return;
      try {
        const rotated = refreshTokenOf(body);
        if (typeof rotated === 'string') pool.tokens.push(rotated);
      } catch {
        // counted by the caller only through its status; a 200 without JSON would drain the pool
      }
    },
  };
}

/** @type {import('./measure.js').RowSpec} */
export const refresh = {
  id: 'refresh',
  label: 'refresh grant POST /token (rotation)',
  baseline: null,
  run: async (context) => {
    await measureHttp(context, refresh, fromPool(context));
    const pool = context.refresh;
    const row = context.rows.find((other) => other.id === 'refresh');
    if (row !== undefined) row.details = { ...row.details, poolEmpty: pool.empty, poolLeft: pool.tokens.length, seeded: pool.seeded };
  },
};
