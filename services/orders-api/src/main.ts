import { runResourceService } from '@sigil/resource-kit';

import { createOrdersApp } from './app.js';

await runResourceService('orders-api', { port: 4001, audience: 'http://localhost:4001' }, createOrdersApp);
