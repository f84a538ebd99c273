import { runResourceService } from '@sigil/resource-kit';

import { createReportsApp } from './app.js';

await runResourceService('reports-api', { port: 4002, audience: 'http://localhost:4002' }, createReportsApp);
