import { writeErrorResponse } from '@sigil/guard';
import { createResourceApp, type ResourceServiceOptions } from '@sigil/resource-kit';

import { newOrderSchema, OrderBook } from './orders.js';

/**
 * orders-api: `GET /orders` (scope orders:read; also an API key in `?api_key=`),
 * `POST /orders` (scope orders:write), `GET /orders/admin/stats` (role admin).
 */
export function createOrdersApp(options: Omit<ResourceServiceOptions, 'routes'>) {
  const book = new OrderBook();
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
    },
  });
}
