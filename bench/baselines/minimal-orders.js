// @ts-check
/**
 * Baseline: a minimal express service answering `GET /orders` with orders-api's JSON shape,
 * `{"orders": [...]}`: one process, helmet, express.json, /healthz, JSON 404 and error
 * handlers, and nothing else (no /metrics, no prom-client, no guard, no logger). What
 * resource-kit's frame costs beyond it shows in `unguarded_orders` against `minimal_orders`.
 *
 * Env: PORT (required).
 */
import express from 'express';
import helmet from 'helmet';

const port = Number(process.env['PORT']);
if (!Number.isInteger(port) || port <= 0) {
  process.stderr.write('minimal-orders: PORT must be a positive integer\n');
  process.exit(2);
}

/** @type {{ id: string, item: string, quantity: number, placedBy: string, placedAt: string }[]} */
const orders = [];

const app = express();
app.disable('x-powered-by');
app.use(helmet());
app.use(express.json({ limit: '16kb' }));
app.get('/healthz', (_req, res) => {
  res.json({ status: 'ok' });
});
app.get('/orders', (_req, res) => {
  res.json({ orders });
});
app.use((_req, res) => {
  res.status(404).json({ error: 'not_found', error_description: 'no such endpoint' });
});
app.use(
  /**
   * @param {unknown} _error
   * @param {import('express').Request} _req
   * @param {import('express').Response} res
   * @param {import('express').NextFunction} _next
   */
  (_error, _req, res, _next) => {
    res.status(500).json({ error: 'server_error', error_description: 'an unexpected error occurred' });
  },
);

const server = app.listen(port, '127.0.0.1');
for (const signal of /** @type {const} */ (['SIGTERM', 'SIGINT'])) process.once(signal, () => server.close(() => process.exit(0)));
