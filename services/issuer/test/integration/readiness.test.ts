import { afterAll, describe, expect, it } from '@jest/globals';

import { backends, ready, type Backend } from '../support/backends.js';
import { request, waitFor, type RawResponse } from '../support/http.js';
import { issuerSuite, type TestIssuer } from '../support/issuer.js';
import { TcpProxy } from '../support/tcp-proxy.js';

/** How long /readyz may take to notice the database going away or coming back. */
const NOTICE_WITHIN_MS = 5000;

const readyz = (issuer: TestIssuer) => request(`${issuer.url}/readyz`, { timeoutMs: NOTICE_WITHIN_MS });
const healthz = (issuer: TestIssuer) => request(`${issuer.url}/healthz`, { timeoutMs: NOTICE_WITHIN_MS });

/** Polls /readyz until it answers `status`; returns the last answer. */
async function readyzUntil(issuer: TestIssuer, status: number, timeoutMs: number): Promise<RawResponse | undefined> {
  let last: RawResponse | undefined;
  await waitFor(async () => {
    last = await readyz(issuer).catch(() => undefined);
    return last?.status === status;
  }, timeoutMs);
  return last;
}

function expectReady(response: RawResponse | undefined) {
  expect(response?.status).toBe(200);
  expect(response?.headers['content-type']).toMatch(/^application\/json/u);
  expect(JSON.parse(response?.body ?? 'null')).toEqual({ status: 'ready' });
}

/** The embedded database lives in the issuer's own process: it cannot become unreachable. */
function embeddedSuite(backend: Backend) {
  const suite = issuerSuite(backend);

  it('when the database is embedded, /readyz always answers 200 ready, one at a time or many at once', async () => {
    for (let attempt = 0; attempt < 3; attempt += 1) expectReady(await readyz(suite.issuer));
    const burst = await Promise.all(Array.from({ length: 10 }, () => readyz(suite.issuer)));
    for (const response of burst) expectReady(response);
  });
}

/** PostgreSQL reached through a proxy that the test can cut and restore. */
function proxiedPostgresSuite(backend: Backend) {
  // cut (reset: open connections destroyed, new ones refused) is the database becoming unreachable, as a partition or a failed-over host would make it
  let relay: TcpProxy | undefined;
  // the issuer reaches its fresh database through the proxy; the suite's own connections (its drop) do not
  const suite = issuerSuite(backend, async (database) => {
    const direct = new URL(database.databaseUrl ?? '');
    relay = await TcpProxy.start({ host: direct.hostname, port: Number(direct.port || 5432) });
    const throughProxy = new URL(direct);
    throughProxy.port = String(relay.port);
    return { DATABASE_URL: throughProxy.toString() };
  });

  // after the suite's own afterAll (jest runs them in order): the issuer has closed by then
  afterAll(async () => {
    await relay?.close();
  });

  it('when the database becomes unreachable, /readyz answers 503 while /healthz stays 200; when it is back, /readyz is 200 again', async () => {
    const { issuer } = suite;
    const proxy = ready(relay);
    expectReady(await readyz(issuer));

    proxy.setMode('reset');
    const cutAt = Date.now();
    const down = await readyzUntil(issuer, 503, NOTICE_WITHIN_MS);
    expect(down?.status).toBe(503);
    expect(Date.now() - cutAt).toBeLessThan(NOTICE_WITHIN_MS + 1000);
    expect(down?.headers['content-type']).toMatch(/^application\/json/u);
    expect(JSON.parse(down?.body ?? 'null')).toEqual({ status: 'unavailable', error_description: 'database unreachable' });

    const health = await healthz(issuer);
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body)).toEqual({ status: 'ok' });
    // still down on a second look: the 503 is not a one-off
    expect((await readyz(issuer)).status).toBe(503);

    proxy.setMode('pass');
    const restoredAt = Date.now();
    const up = await readyzUntil(issuer, 200, NOTICE_WITHIN_MS);
    expectReady(up);
    expect(Date.now() - restoredAt).toBeLessThan(NOTICE_WITHIN_MS + 1000);
  });
}

const suites: Record<Backend['name'], (backend: Backend) => void> = {
  pglite: embeddedSuite,
  postgres: proxiedPostgresSuite,
};

describe.each(backends)('readiness ($name)', (backend) => suites[backend.name](backend));
