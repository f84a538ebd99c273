import { bearerToken, writeErrorResponse } from '@sigil/guard';
import { createResourceApp, type ResourceServiceOptions } from '@sigil/resource-kit';

import { newOrderSchema, OrderBook } from './orders.js';
import { reportsClient, reportsConfig, ReportsUnavailable, type ReportsConfig } from './reports.js';

/**
 * orders-api: `GET /orders` (scope orders:read; also an API key in `?api_key=`),
 * `POST /orders` (scope orders:write), `GET /orders/admin/stats` (role admin), and
 * `GET /orders/summary` (scope orders:read: the order statistics with reports-api's reports,
 * fetched on behalf of the calling person by token exchange).
 */
export function createOrdersApp(options: Omit<ResourceServiceOptions, 'routes'> & { readonly reports?: ReportsConfig }) {
  const book = new OrderBook();
  const reports = reportsClient(options.config, options.reports ?? reportsConfig({}));
  return createResourceApp({
    ...options,
    routes: (app, guard) => {
      app.get('/orders', guard.requireAuth({ apiKeyInQuery: true }), guard.requireScope('orders:read'), (_req, res) => {
        res.json({ orders: book.list() });
      });
      app.post('/orders', guard.requireScope('orders:write'), (req, res) => {
        const parsed = newOrderSchema.safeParse(req.body);
        if (!parsed.success) {
          const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`);
          writeErrorResponse(res, 400, 'invalid_request', problems.join('; '));
          return;
        }
        res.status(201).json(book.place(parsed.data, req.auth?.sub ?? ''));
      });
      app.get('/orders/admin/stats', guard.requireRole('admin'), (_req, res) => {
        res.json(book.stats());
      });
      // delegation (RFC 8693): reports-api is called as the caller, with orders-api acting for them
      app.get('/orders/summary', guard.requireScope('orders:read'), async (req, res) => {
        const token = bearerToken(req.get('authorization'));
        if (req.auth?.kind !== 'user' || token === undefined || token === '') {
          writeErrorResponse(res, 403, 'access_denied', 'the summary calls reports-api on behalf of a person: it takes a person\'s access token');
          return;
        }
        try {
          res.json({ ...book.stats(), reports: await reports(token) });
        } catch (error) {
          if (!(error instanceof ReportsUnavailable)) throw error;
          if (error.status === 503) res.set('Retry-After', '5');
          writeErrorResponse(res, error.status, error.code, error.message);
        }
      });
    },
  });
}
