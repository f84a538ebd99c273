import fs from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from '@jest/globals';

import { backends, temporaryDir, type TestDatabase } from '../support/backends.js';
import { sigilJson } from '../support/cli.js';
import { freePort, testEnv } from '../support/issuer.js';
import { postForm } from '../support/oauth.js';
import { spawnIssuer } from '../support/process.js';

const ORDERS = 'http://localhost:4001';
const RECORDER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../support/record-modules.js');
/** OTLP/JSON's SpanKind: SPAN_KIND_SERVER. */
const SERVER = 2;

interface OtlpValue {
  stringValue?: string;
  intValue?: number | string;
}
interface OtlpAttribute {
  key: string;
  value: OtlpValue;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: OtlpAttribute[];
}
interface OtlpExport {
  resourceSpans: { resource: { attributes: OtlpAttribute[] }; scopeSpans: { scope: { name: string }; spans: OtlpSpan[] }[] }[];
}

/** A span as the test reads it: its resource's and its own attributes as plain values. */
interface ReceivedSpan extends Omit<OtlpSpan, 'attributes'> {
  readonly scope: string;
  readonly resource: Record<string, unknown>;
  readonly attributes: Record<string, unknown>;
}

const plain = (attributes: OtlpAttribute[]) => Object.fromEntries(attributes.map(({ key, value }) => [key, value.stringValue ?? value.intValue]));

/** A local OTLP/HTTP collector: accepts JSON exports on /v1/traces and keeps their spans. */
async function startCollector(): Promise<{ server: Server; url: string; spans: ReceivedSpan[]; paths: string[] }> {
  const spans: ReceivedSpan[] = [];
  const paths: string[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      paths.push(`${req.method} ${req.url} ${req.headers['content-type']}`);
      const exported = JSON.parse(body) as OtlpExport;
      for (const { resource, scopeSpans } of exported.resourceSpans) {
        for (const { scope, spans: received } of scopeSpans) {
          for (const span of received) spans.push({ ...span, scope: scope.name, resource: plain(resource.attributes), attributes: plain(span.attributes) });
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, spans, paths };
}

/**
 * Runs the built issuer as its own process (the modules it imports recorded), makes one
 * client-credentials token request, stops it (SIGTERM: buffered spans are flushed) and answers
 * the imported module URLs.
 */
async function oneTokenRequest(database: TestDatabase, extra: Record<string, string>, workers = 1): Promise<string[]> {
  const dir = await temporaryDir('modules');
  const modulesFile = path.join(dir, 'modules.txt');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = testEnv(database);
  const issuer = spawnIssuer({ ...env, PORT: String(port), ISSUER: url, LOG_LEVEL: 'info', NODE_OPTIONS: `--import ${RECORDER}`, SIGIL_TEST_MODULES_FILE: modulesFile, WEB_CONCURRENCY: String(workers), ...extra });
  try {
    await issuer.waitForOutput(/"msg":"sigil issuer listening"/u, workers, 90_000);
    const created = await sigilJson<{ client_id: string; client_secret: string }>(['clients', 'create', '--name', 'traced', '--grant', 'client_credentials', '--resource', ORDERS], env);
    const response = await postForm(url, { grant_type: 'client_credentials' }, { id: created.client_id, secret: created.client_secret });
    expect(response.status).toBe(200);
  } finally {
    issuer.child.kill('SIGTERM');
  }
  const exited = await issuer.exited;
  expect(exited.code).toBe(0);
  const modules = (await fs.readFile(modulesFile, 'utf8')).split('\n').filter((line) => line !== '');
  await fs.rm(dir, { recursive: true, force: true });
  return modules;
}

const opentelemetry = (modules: string[]) => modules.filter((url) => url.includes('/node_modules/@opentelemetry/'));

describe.each(backends)('OpenTelemetry traces ($name)', (backend) => {
  it('when OTEL_EXPORTER_OTLP_ENDPOINT is set, exports a server span for POST /token (and, on PostgreSQL, the queries it made) over OTLP/HTTP, from a cluster worker too', async () => {
    const database = await backend.create();
    const collector = await startCollector();
    try {
      // on PostgreSQL as a cluster of two workers: each worker starts the SDK itself (the primary serves nothing)
      const modules = await oneTokenRequest(
        database,
        { OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_SERVICE_NAME: 'sigil-issuer-traced', OTEL_BSP_SCHEDULE_DELAY: '200' },
        backend.name === 'postgres' ? 2 : 1,
      );
      expect(opentelemetry(modules).length).toBeGreaterThan(0);
      expect(collector.paths.every((line) => line.startsWith('POST /v1/traces application/json'))).toBe(true);

      const token = collector.spans.filter((span) => span.name === 'POST /token');
      expect(token).toHaveLength(1);
      const [server] = token;
      expect(server).toMatchObject({ kind: SERVER, scope: '@opentelemetry/instrumentation-http', resource: { 'service.name': 'sigil-issuer-traced' } });
      expect(server?.attributes).toMatchObject({ 'http.route': '/token' });
      // probes and scrapes are not traced
      expect(collector.spans.filter((span) => span.name.endsWith('/healthz') || span.name.endsWith('/metrics'))).toEqual([]);

      const queries = collector.spans.filter((span) => span.scope === '@opentelemetry/instrumentation-pg' && span.traceId === server?.traceId);
      if (backend.name === 'postgres') {
        // the client's row (its first lookup), read while answering the request: in its trace
        expect(queries.length).toBeGreaterThan(0);
        expect(queries[0]?.attributes).toMatchObject({ 'db.system.name': 'postgresql', 'db.query.text': expect.stringContaining('"clients"') });
      } else {
        // the embedded database (PGlite) runs in the process, not through pg: no query spans
        expect(queries).toEqual([]);
      }
    } finally {
      await new Promise((resolve) => collector.server.close(resolve));
      await database.drop();
    }
  }, 180_000);

  it('when OTEL_EXPORTER_OTLP_ENDPOINT is not set, no OpenTelemetry module is loaded at all', async () => {
    const database = await backend.create();
    try {
      const modules = await oneTokenRequest(database, {});
      expect(modules.some((url) => url.endsWith('/dist/server.js'))).toBe(true);
      expect(opentelemetry(modules)).toEqual([]);
    } finally {
      await database.drop();
    }
  }, 180_000);
});
