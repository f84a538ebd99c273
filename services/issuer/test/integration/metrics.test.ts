import { describe, expect, it } from '@jest/globals';

import { createClient } from '../../src/domain/clients.js';
import { backends } from '../support/backends.js';
import { issuerSuite } from '../support/issuer.js';
import { postForm } from '../support/oauth.js';

describe.each(backends)('GET /metrics ($name)', (backend) => {
  const suite = issuerSuite(backend);

  it('when tokens are requested, counts them by grant type and outcome in Prometheus format, without secrets', async () => {
    const { client, clientSecret } = await createClient(suite.issuer.stores.clients, { name: 'm', grants: ['client_credentials'], resources: ['https://api.example.com'] });
    const ask = (secret: string) => postForm(suite.issuer.url, { grant_type: 'client_credentials' }, { id: client.id, secret });
    expect((await ask(clientSecret ?? '')).status).toBe(200);
    expect((await ask('wrong')).status).toBe(401);

    const response = await fetch(`${suite.issuer.url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/u);
    const text = await response.text();
    expect(text).toContain('sigil_token_requests_total{grant_type="client_credentials",outcome="success"} 1');
    expect(text).toContain('sigil_token_requests_total{grant_type="client_credentials",outcome="invalid_client"} 1');
    expect(text).toMatch(/sigil_http_request_duration_seconds_count\{method="POST",route="\/token",status="200"\} 1/u);
    expect(text).toContain('sigil_process_cpu_seconds_total');
    expect(text).not.toContain(clientSecret ?? '-');
    expect(text).not.toContain(client.id);
  });
});
