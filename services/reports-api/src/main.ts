import { runResourceService } from '@sigil/guard';

import { createReportsApp } from './app.js';

await runResourceService('reports-api', { port: 4002, audience: 'http://localhost:4002' }, createReportsApp);
