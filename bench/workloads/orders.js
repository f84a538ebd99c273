// @ts-check
/**
 * orders-api's `GET /orders`: in a minimal express service (baselines/minimal-orders.js), in
 * orders-api's own frame without the guard (baselines/unguarded-orders.js), with a bearer
 * token (the guard verifies the JWT access token, RFC 9068) and with an API key.
 */
import { httpRow } from './measure.js';

/**
 * `GET /orders` with the machine client's access token.
 * @param {import('./measure.js').Context} context
 * @returns {import('./measure.js').Workload}
 */
export const guardedOrdersWorkload = (context) => ({ url: `${context.stack.urls.orders}/orders`, headers: context.requests.bearer });

export const minimalOrders = httpRow({
  id: 'minimal_orders',
  label: 'baseline: GET /orders, minimal express',
  baseline: null,
  workload: (context) => ({ url: `${context.stack.urls.minimalOrders}/orders` }),
});

export const unguardedOrders = httpRow({
  id: 'unguarded_orders',
  label: 'baseline: unguarded GET /orders',
  baseline: 'minimal_orders',
  workload: (context) => ({ url: `${context.stack.urls.unguarded}/orders` }),
});

export const guardedOrders = httpRow({
  id: 'guarded_orders',
  label: 'guarded GET /orders (bearer)',
  baseline: 'unguarded_orders',
  workload: guardedOrdersWorkload,
});

export const apiKeyOrders = httpRow({
  id: 'api_key_orders',
  label: 'API key GET /orders (X-API-Key)',
  baseline: 'guarded_orders',
  workload: (context) => ({ url: `${context.stack.urls.orders}/orders`, headers: context.requests.apiKey }),
});
