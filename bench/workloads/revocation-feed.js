// @ts-check
/**
 * The guarded `GET /orders` with the revocation feed polled (orders-api with its own client,
 * polling every ORDERS_FEED_POLL_MS, with revocations listed) and without it (a second
 * orders-api without a client). The ratio of the first to the second is the cost of the feed
 * on the per-request path (a map look-up; the polls run beside the requests).
 */
import { URLSearchParams } from 'node:url';

import { progress } from '../lib/log.js';
import { ORDERS_FEED_POLL_MS } from '../setup.js';
import { measureHttp } from './measure.js';
import { guardedOrdersWorkload } from './orders.js';

/** Revoked tokens listed while the row runs: the guard holds them and looks each request's token up among them. */
const REVOKED = 200;

/**
 * Revokes `count` fresh access tokens of the machine client (RFC 7009), so that the feed lists them.
 * @param {import('./measure.js').Context} context
 * @param {number} count
 */
async function revokeTokens(context, count) {
  const { urls, credentials } = context.stack;
  const authorization = `Basic ${Buffer.from(`${credentials.machine.id}:${credentials.machine.secret}`).toString('base64')}`;
  const post = (/** @type {string} */ path, /** @type {Record<string, string>} */ form) =>
    fetch(`${urls.issuer}${path}`, { method: 'POST', headers: { authorization }, body: new URLSearchParams(form) });
  for (let i = 0; i < count; i += 1) {
    const { access_token: token } = /** @type {{ access_token: string }} */ (await (await post('/token', { grant_type: 'client_credentials' })).json());
    await post('/token/revocation', { token });
  }
}

/** @type {import('./measure.js').RowSpec} */
export const guardedOrdersNoFeed = {
  id: 'guarded_orders_no_feed',
  label: 'guarded GET /orders, no revocation feed',
  baseline: null,
  run: (context) => measureHttp(context, guardedOrdersNoFeed, { ...guardedOrdersWorkload(context), url: `${context.stack.urls.ordersNoFeed}/orders` }),
};

/** @type {import('./measure.js').RowSpec} */
export const guardedOrdersFeed = {
  id: 'guarded_orders_feed',
  label: `guarded GET /orders, revocation feed every ${ORDERS_FEED_POLL_MS / 1000} s`,
  baseline: 'guarded_orders_no_feed',
  needs: 'guarded_orders_no_feed',
  async run(context) {
    progress(`revoking ${REVOKED} access tokens for the feed to list`);
    await revokeTokens(context, REVOKED);
    // one poll after the revocations, so that the guard holds them all during the run
    await new Promise((resolve) => setTimeout(resolve, 2 * ORDERS_FEED_POLL_MS));
    await measureHttp(context, guardedOrdersFeed, guardedOrdersWorkload(context), { pollIntervalMs: ORDERS_FEED_POLL_MS, revokedListed: REVOKED });
  },
};
