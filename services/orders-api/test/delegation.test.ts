import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Guard } from '@sigil/guard';
import { resourceServiceConfig, serve } from '@sigil/resource-kit';
import { pino } from 'pino';

import { createReportsApp } from '../../reports-api/src/app.js';
import { createClient, TOKEN_EXCHANGE } from '../../issuer/src/domain/clients.js';
import { PasswordHasher } from '../../issuer/src/domain/passwords.js';
import { createUser } from '../../issuer/src/domain/users.js';
import { backends, type TestDatabase } from '../../issuer/test/support/backends.js';
import { basicAuth } from '../../issuer/test/support/http.js';
import { startTestIssuer, type TestIssuer } from '../../issuer/test/support/issuer.js';
import { createOrdersApp } from '../src/app.js';

const ORDERS = 'http://localhost:4001';
const REPORTS = 'http://localhost:4002';
const PASSWORD = 'correct horse battery';
const POLL_MS = 500;
/** One poll interval, plus what one poll and one request may take on a loaded machine. */
const REFUSED_WITHIN_MS = POLL_MS + 1500;

interface Credentials {
  id: string;
  secret: string;
}

interface Summary {
  orders: number;
  quantity: number;
  reports: { reports: unknown[]; requested_by: string; act?: unknown };
}

describe.each(backends)('orders-api calls reports-api on behalf of its caller, by token exchange ($name)', (backend) => {
  let database: TestDatabase;
  let issuer: TestIssuer;
  let orders: { url: string; close(): Promise<void> };
  let reports: { url: string; close(): Promise<void> };
  const guards: Guard[] = [];
  let ordersClient: Credentials;
  let app: Credentials;
  let machine: Credentials;
  let userId: string;

  const created = async (input: Parameters<typeof createClient>[1]) => {
    const { client, clientSecret } = await createClient(issuer.stores.clients, input);
    return { id: client.id, secret: clientSecret ?? '' };
  };
  const token = async (client: Credentials, form: Record<string, string>) => {
    const response = await fetch(`${issuer.url}/token`, { method: 'POST', headers: { authorization: basicAuth(client.id, client.secret) }, body: new URLSearchParams(form) });
    expect(response.status).toBe(200);
    return (await response.json()) as { access_token: string; refresh_token?: string };
  };
  const signIn = (scope?: string) => token(app, { grant_type: 'password', username: 'nora', password: PASSWORD, ...(scope === undefined ? {} : { scope }) });
  const summary = (jwt: string) => fetch(`${orders.url}/orders/summary`, { headers: { authorization: `Bearer ${jwt}` } });
  const service = (audience: string, client: Credentials) =>
    resourceServiceConfig(
      { ISSUER: issuer.issuer, AUDIENCE: audience, GUARD_CLIENT_ID: client.id, GUARD_CLIENT_SECRET: client.secret, REVOCATION_POLL_INTERVAL_MS: String(POLL_MS), LOG_LEVEL: 'silent' },
      { port: 0, audience },
    );

  beforeAll(async () => {
    database = await backend.create();
    issuer = await startTestIssuer(database);
    // as npm run stack registers them: orders-api's own client may exchange for reports-api
    ordersClient = await created({ name: 'orders-api', grants: [TOKEN_EXCHANGE], scopes: ['orders:read', 'orders:write'], resources: [ORDERS], mayExchangeFor: [REPORTS] });
    const reportsClient = await created({ name: 'reports-api', scopes: ['reports:read'], resources: [REPORTS] });
    app = await created({ name: 'shop', grants: ['password', 'refresh_token'], scopes: ['orders:read', 'reports:read'], resources: [ORDERS] });
    machine = await created({ name: 'fulfilment', grants: ['client_credentials'], scopes: ['orders:read', 'reports:read'], resources: [ORDERS] });
    userId = (await createUser(issuer.stores.users, { username: 'nora', password: PASSWORD }, new PasswordHasher({ memoryKib: 19_456, timeCost: 2, parallelism: 1 }))).id;

    const builtReports = createReportsApp({ config: service(REPORTS, reportsClient), logger: pino({ level: 'silent' }) });
    reports = await serve(builtReports.app, 0);
    // reports-api listens on a loopback port, and its audience is its public URI
    const builtOrders = createOrdersApp({ config: service(ORDERS, ordersClient), logger: pino({ level: 'silent' }), reports: { url: reports.url, audience: REPORTS } });
    orders = await serve(builtOrders.app, 0);
    guards.push(builtReports.guard, builtOrders.guard);
  });

  afterAll(async () => {
    for (const guard of guards) guard.close();
    await orders?.close();
    await reports?.close();
    await issuer?.close();
    await database?.drop();
  });

  it("when a person's token calls GET /orders/summary, reports-api is called with the person as sub and orders-api's client as act", async () => {
    const { access_token: jwt } = await signIn();
    const response = await summary(jwt);
    expect(response.status).toBe(200);
    const body = (await response.json()) as Summary;
    expect(body).toMatchObject({ orders: 0, quantity: 0 });
    expect(body.reports.reports.length).toBeGreaterThan(0);
    expect(body.reports.requested_by).toBe(userId);
    expect(body.reports.act).toEqual({ sub: ordersClient.id });
  });

  it('when the caller is a client (client credentials), the summary is refused: there is no person to act for', async () => {
    const { access_token: jwt } = await token(machine, { grant_type: 'client_credentials' });
    const response = await summary(jwt);
    expect(response.status).toBe(403);
    expect(await response.json()).toMatchObject({ error: 'access_denied' });
  });

  it("when the person's token lacks reports:read, the exchanged token lacks it too and reports-api refuses it", async () => {
    const { access_token: jwt } = await signIn('orders:read');
    const response = await summary(jwt);
    expect(response.status).toBe(502);
    expect(await response.json()).toMatchObject({ error: 'bad_gateway', error_description: 'reports-api answered 403' });
  });

  it("when the person's grant ends, reports-api refuses the exchanged token within one poll of its revocation feed (E3)", async () => {
    const signedIn = await signIn();
    // orders-api's client exchanging the token itself, as the summary does
    const exchanged = await token(ordersClient, {
      grant_type: TOKEN_EXCHANGE,
      subject_token: signedIn.access_token,
      subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      resource: REPORTS,
    });
    const reportsWith = () => fetch(`${reports.url}/reports`, { headers: { authorization: `Bearer ${exchanged.access_token}` } });
    expect((await reportsWith()).status).toBe(200);

    const revoked = await fetch(`${issuer.url}/token/revocation`, {
      method: 'POST',
      headers: { authorization: basicAuth(app.id, app.secret) },
      body: new URLSearchParams({ token: signedIn.refresh_token ?? '' }),
    });
    expect(revoked.status).toBe(200);
    const start = Date.now();
    let status = 200;
    while (status === 200 && Date.now() - start < REFUSED_WITHIN_MS * 3) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      status = (await reportsWith()).status;
    }
    expect(status).toBe(401);
    expect(Date.now() - start).toBeLessThanOrEqual(REFUSED_WITHIN_MS);
  });
});
