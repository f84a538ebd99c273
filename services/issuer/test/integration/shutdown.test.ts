import http from 'node:http';
import type { Socket } from 'node:net';

import { describe, expect, it } from '@jest/globals';

import { backends, databaseSuite, type TestDatabase } from '../support/backends.js';
import { basicAuth } from '../support/http.js';
import { sigil, sigilJson } from '../support/cli.js';
import { freePort, testEnv } from '../support/issuer.js';
import { postForm, type Credentials } from '../support/oauth.js';
import { spawnIssuer, type IssuerProcess } from '../support/process.js';

const ORDERS = 'http://localhost:4001';
const PASSWORD = 'correct horse battery staple';
const GRACE_S = 5;
/** For what follows the drain (background work, the database) and the process's own exit. */
const EXIT_MARGIN_MS = 3000;
const CONNECTIONS = 16;
const CHAINS = 4;

interface Answer {
  readonly status: number;
  readonly connection: string | undefined;
  readonly body: string;
  readonly socket: Socket;
  readonly receivedAt: number;
}

/** POST /token over `agent`; rejects with the socket error (its `code`) when there is no answer. */
function token(agent: http.Agent, url: string, client: Credentials, form: Record<string, string>): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const body = new URLSearchParams(form).toString();
    const outgoing = http.request(`${url}/token`, {
      method: 'POST',
      agent,
      headers: { authorization: basicAuth(client.id, client.secret), 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(Buffer.byteLength(body)) },
    });
    outgoing.on('response', (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, connection: response.headers.connection, body: Buffer.concat(chunks).toString(), socket: outgoing.socket as Socket, receivedAt: Date.now() }),
      );
    });
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

async function startProcess(database: TestDatabase, extra: Record<string, string> = {}): Promise<{ issuer: IssuerProcess; url: string }> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const issuer = spawnIssuer({ ...testEnv(database), PORT: String(port), ISSUER: url, LOG_LEVEL: 'info', SHUTDOWN_GRACE: String(GRACE_S), ...extra });
  await issuer.waitForOutput(/"msg":"sigil issuer listening"/u);
  return { issuer, url };
}

/**
 * Through the CLI beside the running issuer: a client for every grant the test uses and a user
 * (its password hashed with `env`'s ARGON2_* where the CLI hashes); then `chains` refresh tokens.
 */
async function prepare(database: TestDatabase, url: string, username: string, { chains = CHAINS, env = {} }: { chains?: number; env?: Record<string, string> } = {}) {
  const created = await sigilJson<{ client_id: string; client_secret: string }>(
    ['clients', 'create', '--name', 'load', '--grant', 'client_credentials', '--grant', 'password', '--grant', 'refresh_token', '--scope', 'orders:read', '--resource', ORDERS],
    testEnv(database, env),
  );
  const user = await sigil(['users', 'create', '--username', username, '--password-stdin'], testEnv(database, env), `${PASSWORD}\n`);
  if (user.code !== 0) throw new Error(`users create: ${user.stderr}`);
  const client = { id: created.client_id, secret: created.client_secret };
  const refreshTokens: string[] = [];
  for (let i = 0; i < chains; i += 1) {
    const issued = await postForm(url, { grant_type: 'password', username, password: PASSWORD, scope: 'orders:read' }, client);
    refreshTokens.push(((await issued.json()) as { refresh_token: string }).refresh_token);
  }
  return { client, refreshTokens };
}

/** What the load saw: every answer, the errors of requests that had been written, the refusals of new connections. */
interface Load {
  readonly answers: Answer[];
  readonly failures: string[];
  refused: number;
  /** Each chain's last refresh token received. */
  readonly chains: string[];
}

/** One connection's loop: requests back to back until a new connection is refused. */
async function loop(load: Load, send: () => Promise<Answer>, onAnswer: (answer: Answer) => void = () => undefined): Promise<void> {
  for (;;) {
    try {
      const answer = await send();
      load.answers.push(answer);
      if (answer.status !== 200) load.failures.push(`status ${answer.status}: ${answer.body}`);
      else onAnswer(answer);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // refused before anything was written: the listener has closed, as it should
      if (code === 'ECONNREFUSED') load.refused += 1;
      else load.failures.push(`${code ?? ''} ${(error as Error).message}`);
      return;
    }
  }
}

function runLoad(agent: http.Agent, url: string, client: Credentials, refreshTokens: readonly string[]): { load: Load; done: Promise<unknown> } {
  const load: Load = { answers: [], failures: [], refused: 0, chains: [...refreshTokens] };
  const machines = Array.from({ length: CONNECTIONS - CHAINS }, () => loop(load, () => token(agent, url, client, { grant_type: 'client_credentials' })));
  const chains = load.chains.map((_, chain) =>
    loop(
      load,
      () => token(agent, url, client, { grant_type: 'refresh_token', refresh_token: load.chains[chain] ?? '' }),
      (answer) => (load.chains[chain] = (JSON.parse(answer.body) as { refresh_token: string }).refresh_token),
    ),
  );
  return { load, done: Promise.all([...machines, ...chains]) };
}

describe.each(backends)('graceful shutdown ($name)', (backend) => {
  const suite = databaseSuite(backend);

  it('when SIGTERM lands under keep-alive load, no written request is reset, the drain answers with Connection: close, the process exits 0 within SHUTDOWN_GRACE, and every refresh chain still works after a restart', async () => {
    const { database } = suite;
    const { issuer, url } = await startProcess(database);
    const { client, refreshTokens } = await prepare(database, url, 'alice');
    const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
    const { load, done } = runLoad(agent, url, client, refreshTokens);
    try {
      while (load.answers.length < 100 && load.failures.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
      const signalledAt = Date.now();
      issuer.child.kill('SIGTERM');
      const exited = await issuer.exited;
      const exitedAfter = Date.now() - signalledAt;
      await done;

      expect(load.failures).toEqual([]);
      expect(exited.code).toBe(0);
      expect(exitedAfter).toBeLessThan(GRACE_S * 1000 + EXIT_MARGIN_MS);
      // every connection that answered during the drain was closed by the server after an answer saying so, not under a request
      const afterSignal = load.answers.filter((answer) => answer.receivedAt >= signalledAt);
      const lastOnEach = new Map(afterSignal.map((answer) => [answer.socket, answer.connection]));
      expect([...lastOnEach.values()]).toEqual([...lastOnEach.values()].map(() => 'close'));
      expect(lastOnEach.size).toBeGreaterThan(0);
    } finally {
      agent.destroy();
      issuer.child.kill('SIGKILL');
    }

    // every chain's last refresh token is good: no rotation committed without its answer reaching the client
    const restarted = await startProcess(database, { REFRESH_TOKEN_RETRY_WINDOW: '0' });
    try {
      const statuses = [];
      for (const refreshToken of load.chains) statuses.push((await postForm(restarted.url, { grant_type: 'refresh_token', refresh_token: refreshToken }, client)).status);
      expect(statuses).toEqual(Array(CHAINS).fill(200));
    } finally {
      restarted.issuer.child.kill('SIGTERM');
      expect((await restarted.issuer.exited).code).toBe(0);
    }
  }, 60_000);

  it('when SIGTERM lands during a slow password grant, it is answered 200 (Connection: close) before the database closes, and the process exits as soon as it is', async () => {
    const { database } = suite;
    // a hash this costly takes about a second to verify
    const costly = { ARGON2_TIME_COST: '100' };
    const { issuer, url } = await startProcess(database, { ...costly, SHUTDOWN_GRACE: '20' });
    const { client } = await prepare(database, url, 'bob', { chains: 0, env: costly });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const answer = token(agent, url, client, { grant_type: 'password', username: 'bob', password: PASSWORD, scope: 'orders:read' });
      await new Promise((resolve) => setTimeout(resolve, 300));
      issuer.child.kill('SIGTERM');
      const answered = await answer;
      expect(answered.status).toBe(200);
      expect(answered.connection).toBe('close');
      expect(JSON.parse(answered.body)).toMatchObject({ refresh_token: expect.any(String) });
      const exited = await issuer.exited;
      expect(exited.code).toBe(0);
      // the drain ends with its last request, not at SHUTDOWN_GRACE or a keep-alive timeout
      expect(Date.now() - answered.receivedAt).toBeLessThan(3000);
      expect(exited.stdout).not.toContain('error while stopping');
    } finally {
      agent.destroy();
      issuer.child.kill('SIGKILL');
    }
  }, 60_000);
});
