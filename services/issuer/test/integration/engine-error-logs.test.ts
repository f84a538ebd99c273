import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';

import { PasswordHasher } from '../../src/domain/passwords.js';
import { createUser } from '../../src/domain/users.js';
import { backends, type TestDatabase } from '../support/backends.js';
import { basicAuth, request } from '../support/http.js';
import { startTestIssuer, type TestIssuer } from '../support/issuer.js';
import { captureLogs } from '../support/logs.js';
import { postForm, registerClient, type Credentials } from '../support/oauth.js';

const ORDERS = 'http://localhost:4001';
const PASSWORD = 'correct horse battery staple';

/** A stack frame or a source path: none may reach a client. */
const STACK_OR_PATH = /\n\s+at |node_modules|\/src\/|\/dist\/|\.[jt]s:\d+/u;

/**
 * An error that escapes the engine's own error handling reaches koa's application-level
 * handler, which by default prints a multi-line stack with console.error. Here the database
 * goes away under a request whose last step (the introspection extension asking whether a
 * user token's grant is alive) runs outside the engine's handler.
 */
describe.each(backends)('engine errors are logged as one JSON line, never printed ($name)', (backend) => {
  const logs = captureLogs();
  let database: TestDatabase;
  let issuer: TestIssuer;
  let app: Credentials;

  const introspect = (token: string) =>
    request(`${issuer.url}/token/introspection`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth(app.id, app.secret) },
      body: new URLSearchParams({ token }).toString(),
    });

  beforeAll(async () => {
    database = await backend.create();
    issuer = await startTestIssuer(database, { LOG_LEVEL: 'info' }, { logger: (config) => logs.logger(config.logLevel) });
    app = await registerClient(issuer.stores.clients, { name: 'mobile', grants: ['password'], scopes: ['orders:read'], resources: [ORDERS] });
    await createUser(issuer.stores.users, { username: 'alice', password: PASSWORD, roles: [] }, new PasswordHasher());
  });

  afterAll(async () => {
    await issuer?.close();
    await database?.drop();
  });

  it('when the database is gone under a request, nothing is written to the console or stderr, and the failure is one JSON log line with its stack inside', async () => {
    const issued = await postForm(issuer.url, { grant_type: 'password', username: 'alice', password: PASSWORD, scope: 'orders:read' }, app);
    expect(issued.status).toBe(200);
    const { access_token: token } = (await issued.json()) as { access_token: string };
    // the client is known (and cached) and the token introspects while the database is up
    expect(JSON.parse((await introspect(token)).body)).toMatchObject({ active: true });

    await issuer.db.destroy();
    const printed: unknown[][] = [];
    const observers = [
      jest.spyOn(console, 'error').mockImplementation((...args: unknown[]) => void printed.push(args)),
      jest.spyOn(console, 'warn').mockImplementation((...args: unknown[]) => void printed.push(args)),
      jest.spyOn(console, 'log').mockImplementation((...args: unknown[]) => void printed.push(args)),
    ];
    const before = logs.lines.length;
    let response;
    try {
      response = await introspect(token);
    } finally {
      for (const observer of observers) observer.mockRestore();
    }

    expect(printed).toEqual([]);
    expect(response.status).toBeGreaterThanOrEqual(500);
    expect(response.body).not.toMatch(STACK_OR_PATH);
    const lines = logs.lines.slice(before);
    for (const line of lines) {
      expect(line.endsWith('\n')).toBe(true);
      expect(line.slice(0, -1)).not.toContain('\n');
    }
    const errors = lines.map((line) => JSON.parse(line) as { level: number; err?: { stack?: string } }).filter((entry) => entry.level >= 50);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.err?.stack).toEqual(expect.stringContaining('\n    at '));
  });
});
