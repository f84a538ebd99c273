import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import { createResourceApp, resourceServiceConfig, serve, ServiceConfigError } from '../src/index.js';

const AUDIENCE = 'https://orders.test';

/** A logger that keeps what it is given, to see what the chassis logs. */
function memoryLogger() {
  const lines: { level: string; details: Record<string, unknown>; message: string }[] = [];
  const at = (level: string) => (details: Record<string, unknown>, message: string) => {
    lines.push({ level, details, message });
  };
  return { lines, info: at('info'), warn: at('warn'), error: at('error') };
}

describe('resource kit: the frame of a resource service, over HTTP', () => {
  const logger = memoryLogger();
  let service: { url: string; close(): Promise<void> };

  beforeAll(async () => {
    // nothing below makes the guard ask the issuer: no request carries a credential
    const config = resourceServiceConfig({ ISSUER: 'http://127.0.0.1:9' }, { port: 0, audience: AUDIENCE });
    const { app } = createResourceApp({
      config,
      logger,
      routes: (routes, guard) => {
        routes.post('/echo', (req, res) => {
          res.json(req.body);
        });
        routes.get('/boom', () => {
          throw new Error('boom at /boom');
        });
        routes.get('/guarded', guard.requireAuth(), (_req, res) => {
          res.json({ ok: true });
        });
      },
    });
    service = await serve(app, 0);
  });

  afterAll(async () => {
    await service?.close();
  });

  const post = (path: string, body: string) => fetch(`${service.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });

  it('when /healthz is asked, answers ok without a credential', async () => {
    const response = await fetch(`${service.url}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
  });

  it('when a route does not exist, answers a JSON 404 not_found', async () => {
    const response = await fetch(`${service.url}/nope`);
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/u);
    expect(await response.json()).toEqual({ error: 'not_found', error_description: 'no such endpoint' });
  });

  it('when a JSON body is readable, the route gets it parsed', async () => {
    const response = await post('/echo', '{"item":"widget"}');
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ item: 'widget' });
  });

  it('when a JSON body cannot be parsed, answers 400 invalid_request', async () => {
    const response = await post('/echo', '{"item":');
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: 'invalid_request', error_description: 'the request body could not be read' });
  });

  it('when a JSON body is over 16 kB, answers 413 with the same invalid_request body', async () => {
    const response = await post('/echo', JSON.stringify({ item: 'x'.repeat(17 * 1024) }));
    expect(response.status).toBe(413);
    expect(await response.json()).toEqual({ error: 'invalid_request', error_description: 'the request body could not be read' });
  });

  it('when a route throws, answers 500 server_error without the error and logs it', async () => {
    const response = await fetch(`${service.url}/boom`);
    expect(response.status).toBe(500);
    const text = await response.text();
    expect(JSON.parse(text)).toEqual({ error: 'server_error', error_description: 'an unexpected error occurred' });
    expect(text).not.toContain('boom at /boom');
    expect(logger.lines).toContainEqual({ level: 'error', details: { err: expect.any(Error) }, message: 'unhandled error' });
  });

  it('when a guarded route gets no credential, the guard answers 401 with the audience as realm', async () => {
    const response = await fetch(`${service.url}/guarded`);
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe(`Bearer realm="${AUDIENCE}"`);
  });
});

describe('resource kit: configuration from the environment', () => {
  const defaults = { port: 4001, audience: 'http://localhost:4001' };

  it('when nothing is set, uses the defaults', () => {
    expect(resourceServiceConfig({}, defaults)).toEqual({
      port: 4001,
      issuer: 'http://localhost:4000',
      audience: 'http://localhost:4001',
      guardClient: undefined,
      revocationPollMs: 10_000,
      logLevel: 'info',
    });
  });

  it('when every variable is set, reads them (blank ones count as unset, a trailing slash leaves the issuer)', () => {
    const env = { PORT: '8080', ISSUER: 'https://auth.test/', AUDIENCE: 'https://orders.test', GUARD_CLIENT_ID: 'c', GUARD_CLIENT_SECRET: 's', REVOCATION_POLL_INTERVAL_MS: '500', PUBLIC_URL: 'https://api.test/orders/', LOG_LEVEL: ' ' };
    expect(resourceServiceConfig(env, defaults)).toEqual({
      port: 8080,
      issuer: 'https://auth.test',
      audience: 'https://orders.test',
      guardClient: { clientId: 'c', clientSecret: 's' },
      revocationPollMs: 500,
      publicUrl: 'https://api.test/orders',
      logLevel: 'info',
    });
  });

  it('when several variables are bad, names every one of them in one error', () => {
    const env = { PORT: '80x', ISSUER: 'ftp://auth.test', AUDIENCE: 'not a uri', GUARD_CLIENT_ID: 'c', REVOCATION_POLL_INTERVAL_MS: '50', PUBLIC_URL: 'https://api.test/?x=1', LOG_LEVEL: 'loud' };
    let error: unknown;
    try {
      resourceServiceConfig(env, defaults);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ServiceConfigError);
    const message = (error as Error).message;
    for (const name of ['PORT', 'ISSUER', 'AUDIENCE', 'GUARD_CLIENT_ID and GUARD_CLIENT_SECRET', 'REVOCATION_POLL_INTERVAL_MS', 'PUBLIC_URL', 'LOG_LEVEL']) expect(message).toContain(name);
    expect(message).not.toContain('\n');
  });
});
