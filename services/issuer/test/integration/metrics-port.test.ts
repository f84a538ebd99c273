import { describe, expect, it } from '@jest/globals';

import { backends } from '../support/backends.js';
import { issuerSuite } from '../support/issuer.js';
import { postForm } from '../support/oauth.js';

describe.each(backends)('METRICS_PORT ($name)', (backend) => {
  const suite = issuerSuite(backend, { METRICS_PORT: '0' });

  it('when METRICS_PORT is set, /metrics is served on that listener only; the public listener answers 404 for it', async () => {
    const metricsUrl = suite.issuer.metricsUrl ?? '';
    expect(metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/u);
    expect(metricsUrl).not.toBe(suite.issuer.url);
    expect((await postForm(suite.issuer.url, { grant_type: 'client_credentials' })).status).toBe(401);

    const metrics = await fetch(`${metricsUrl}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/u);
    expect(await metrics.text()).toContain('sigil_token_requests_total{grant_type="client_credentials",outcome="invalid_client"} 1');

    const publicMetrics = await fetch(`${suite.issuer.url}/metrics`);
    expect(publicMetrics.status).toBe(404);
    expect(await publicMetrics.json()).toEqual({ error: 'not_found', error_description: 'no such endpoint' });

    // the metrics listener serves nothing else
    const other = await fetch(`${metricsUrl}/token`, { method: 'POST' });
    expect(other.status).toBe(404);
    expect((await fetch(`${metricsUrl}/healthz`)).status).toBe(404);
  });
});
