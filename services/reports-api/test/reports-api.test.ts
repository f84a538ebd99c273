import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { resourceServiceConfig, serve } from '@sigil/resource-kit';
import { pino } from 'pino';

import { createClient } from '../../issuer/src/domain/clients.js';
import { backends, type TestDatabase } from '../../issuer/test/support/backends.js';
import { basicAuth } from '../../issuer/test/support/http.js';
import { startTestIssuer, type TestIssuer } from '../../issuer/test/support/issuer.js';
import { createReportsApp } from '../src/app.js';

const REPORTS = 'http://localhost:4002';

describe.each(backends)('reports-api behind a real issuer ($name)', (backend) => {
  let database: TestDatabase;
  let issuer: TestIssuer;
  let service: { url: string; close(): Promise<void> };

  const tokenFor = async (scopes: string[]) => {
    const { client, clientSecret } = await createClient(issuer.stores.clients, {
      name: `reports-${scopes.join('-') || 'none'}`,
      grants: ['client_credentials'],
      scopes: scopes.length > 0 ? scopes : ['unrelated:scope'],
      resources: [REPORTS],
    });
    const response = await fetch(`${issuer.url}/token`, {
      method: 'POST',
      headers: { authorization: basicAuth(client.id, clientSecret ?? '') },
      body: new URLSearchParams({ grant_type: 'client_credentials' }),
    });
    return ((await response.json()) as { access_token: string }).access_token;
  };

  beforeAll(async () => {
    database = await backend.create();
    issuer = await startTestIssuer(database);
    const config = resourceServiceConfig({ ISSUER: issuer.issuer }, { port: 0, audience: REPORTS });
    service = await serve(createReportsApp({ config, logger: pino({ level: 'silent' }) }).app, 0);
  });

  afterAll(async () => {
    await service?.close();
    await issuer?.close();
    await database?.drop();
  });

  it('when the token carries reports:read, lists the reports', async () => {
    const response = await fetch(`${service.url}/reports`, { headers: { authorization: `Bearer ${await tokenFor(['reports:read'])}` } });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ reports: expect.arrayContaining([expect.objectContaining({ id: 'daily-sales' })]) });
  });

  it('when the token lacks reports:read, answers 403 insufficient_scope', async () => {
    const response = await fetch(`${service.url}/reports`, { headers: { authorization: `Bearer ${await tokenFor([])}` } });
    expect(response.status).toBe(403);
    expect(response.headers.get('www-authenticate')).toContain('scope="reports:read"');
  });

  it('when no credential is sent, answers 401; /healthz needs none', async () => {
    expect((await fetch(`${service.url}/reports`)).status).toBe(401);
    const health = await fetch(`${service.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
  });

  it('when an API key is sent but this service has no guard client, answers 401 without an error code', async () => {
    const response = await fetch(`${service.url}/reports`, { headers: { 'x-api-key': 'sgk_0_x' } });
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe(`Bearer realm="${REPORTS}"`);
  });

  it('when a route does not exist, answers a JSON 404', async () => {
    const response = await fetch(`${service.url}/nope`);
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ error: 'not_found', error_description: 'no such endpoint' });
  });
});
