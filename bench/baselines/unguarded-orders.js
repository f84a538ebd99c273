// @ts-check
/**
 * Baseline (b): orders-api's `GET /orders` without the guard. The same process as orders-api
 * (resource-kit's `runResourceService` and `createResourceApp`: the configuration from the
 * environment, pino, helmet, express.json, `/healthz`, `/metrics` with prom-client's process
 * metrics, the guard built and its issuer's metadata read, the revocation feed polled with a
 * guard client, JSON 404 and error handlers, the same listener), with `GET /orders` mounted
 * without the guard's middleware and answering the same JSON shape, `{"orders": [...]}`. What
 * `guarded_orders` costs beyond it is the guard's work alone.
 *
 * Env: orders-api's (PORT, ISSUER, AUDIENCE, GUARD_CLIENT_ID…).
 */
import { createResourceApp, runResourceService } from '@sigil/resource-kit';

/** @type {{ id: string, item: string, quantity: number, placedBy: string, placedAt: string }[]} */
const orders = [];

await runResourceService('unguarded-orders', { port: 4001, audience: 'http://localhost:4001' }, (options) =>
  createResourceApp({
    ...options,
    routes: (app) => {
      app.get('/orders', (_req, res) => {
        res.json({ orders });
      });
    },
  }),
);
