import { createResourceApp, type ResourceServiceOptions } from '@sigil/resource-kit';

const REPORTS = [
  { id: 'daily-sales', title: 'Daily sales', period: 'P1D' },
  { id: 'monthly-revenue', title: 'Monthly revenue', period: 'P1M' },
];

/**
 * reports-api: `GET /reports` (scope reports:read). Its answer says who asked: `requested_by`
 * (the token's `sub`) and, for a token exchanged by a service calling on that person's behalf
 * (RFC 8693), `act`, the chain of services acting for them.
 */
export function createReportsApp(options: Omit<ResourceServiceOptions, 'routes'>) {
  return createResourceApp({
    ...options,
    routes: (app, guard) => {
      app.get('/reports', guard.requireScope('reports:read'), (req, res) => {
        res.json({ reports: REPORTS, requested_by: req.auth?.sub, act: req.auth?.act });
      });
    },
  });
}
