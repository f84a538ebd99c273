import { runResourceService, ServiceConfigError } from '@sigil/resource-kit';

import { createOrdersApp } from './app.js';
import { reportsConfig, type ReportsConfig } from './reports.js';

/** REPORTS_URL and REPORTS_AUDIENCE, or one line and exit 2, as for the variables every resource service reads. */
function reportsOrExit(): ReportsConfig {
  try {
    return reportsConfig(process.env);
  } catch (error) {
    if (!(error instanceof ServiceConfigError)) throw error;
    process.stderr.write(`orders-api: ${error.message}\n`);
    process.exit(2);
  }
}

const reports = reportsOrExit();
await runResourceService('orders-api', { port: 4001, audience: 'http://localhost:4001' }, (options) => createOrdersApp({ ...options, reports }));
