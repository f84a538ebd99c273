import { spawn } from 'node:child_process';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from '@jest/globals';

import { backends, databaseSuite, describeOnPostgres, type TestDatabase } from '../support/backends.js';
import { sigilJson } from '../support/cli.js';
import { basicAuth } from '../support/http.js';
import { freePort, testEnv } from '../support/issuer.js';
import { postForm } from '../support/oauth.js';
import { runIssuerProcess, spawnIssuer } from '../support/process.js';

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/main.js');

/** Per back end: what WEB_CONCURRENCY=2 does. */
const cases = {
  pglite: {
    title: 'when WEB_CONCURRENCY=2 is asked of the embedded database, refuses with one line (exit 2)',
    async run(database: TestDatabase) {
      const result = await runIssuerProcess({ ...testEnv(database), PORT: String(await freePort()), WEB_CONCURRENCY: '2' });
      expect(result.code).toBe(2);
      expect(result.stderr).toBe(
        'sigil: invalid configuration: WEB_CONCURRENCY above 1 needs DATABASE_URL (the embedded database has a single owner process) (got "2")\n',
      );
    },
  },
  postgres: {
    title: 'when WEB_CONCURRENCY=2 on PostgreSQL, two workers share the port and stop on SIGTERM',
    async run(database: TestDatabase) {
      const port = await freePort();
      const env = { ...testEnv(database), PORT: String(port), ISSUER: `http://127.0.0.1:${port}`, WEB_CONCURRENCY: '2', LOG_LEVEL: 'info' };
      const child = spawn(process.execPath, [MAIN], { env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
      try {
        const deadline = Date.now() + 30_000;
        while ((output.match(/sigil issuer listening/gu) ?? []).length < 2) {
          if (Date.now() > deadline) throw new Error(`workers did not start: ${output}`);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        const { client_id: id, client_secret: secret } = await sigilJson<{ client_id: string; client_secret: string }>(
          ['clients', 'create', '--name', 'c', '--grant', 'client_credentials', '--resource', 'https://api.example.com'],
          testEnv(database),
        );
        const statuses = await Promise.all(
          Array.from({ length: 8 }, () =>
            postForm(`http://127.0.0.1:${port}`, { grant_type: 'client_credentials' }, { id, secret }).then((response) => response.status),
          ),
        );
        expect(statuses).toEqual(Array(8).fill(200));
        expect(output.match(/"msg":"migrations applied"/gu)).toHaveLength(1);
        // libuv threads: each worker's share of the cores for argon2id (at least 1), and one for signatures
        const threads = Math.max(1, Math.floor(os.availableParallelism() / 2)) + 1;
        expect(output).toContain(`"UV_THREADPOOL_SIZE":"${threads}","msg":"started workers"`);
      } finally {
        child.kill('SIGTERM');
      }
      expect(await exited).toBe(0);
    },
  },
} as const;

/** Requests back to back over `connections` keep-alive connections until one fails (the listener has closed, say): each answer's status, or the error's code. */
async function keepBusy(url: string, client: { id: string; secret: string }, connections: number): Promise<{ stop: () => Promise<string[]> }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const outcomes: string[] = [];
  let running = true;
  const once = () =>
    new Promise<string>((resolve, reject) => {
      const body = 'grant_type=client_credentials';
      const outgoing = http.request(`${url}/token`, {
        method: 'POST',
        agent,
        headers: { authorization: basicAuth(client.id, client.secret), 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(body.length) },
      });
      outgoing.on('response', (response) => response.resume().on('end', () => resolve(String(response.statusCode))));
      outgoing.on('error', reject);
      outgoing.end(body);
    });
  const loops = Array.from({ length: connections }, async () => {
    while (running) {
      outcomes.push(
        await once().catch((error: unknown) => {
          running = false;
          return String((error as NodeJS.ErrnoException).code);
        }),
      );
    }
  });
  return {
    stop: async () => {
      await Promise.all(loops);
      agent.destroy();
      return outcomes;
    },
  };
}

describe.each(backends)('cluster workers ($name)', (backend) => {
  const suite = databaseSuite(backend);

  it(cases[backend.name].title, async () => {
    await cases[backend.name].run(suite.database);
  });
});

describeOnPostgres('cluster shutdown ($name)', (backend) => {
  const suite = databaseSuite(backend);

  it('when SIGTERM reaches the primary while keep-alive connections are busy, both workers drain and the primary exits 0 within SHUTDOWN_GRACE', async () => {
    const { database } = suite;
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const grace = 3;
    const issuer = spawnIssuer({ ...testEnv(database), PORT: String(port), ISSUER: url, WEB_CONCURRENCY: '2', SHUTDOWN_GRACE: String(grace), LOG_LEVEL: 'info' });
    try {
      await issuer.waitForOutput(/"msg":"sigil issuer listening"/u, 2);
      const { client_id: id, client_secret: secret } = await sigilJson<{ client_id: string; client_secret: string }>(
        ['clients', 'create', '--name', 'c', '--grant', 'client_credentials', '--resource', 'https://api.example.com'],
        testEnv(database),
      );
      const load = await keepBusy(url, { id, secret }, 4);
      await new Promise((resolve) => setTimeout(resolve, 500));
      const signalledAt = Date.now();
      issuer.child.kill('SIGTERM');
      const exited = await issuer.exited;
      const stopped = Date.now() - signalledAt;
      // the whole log on failure: which process gave up, and when
      expect({ code: exited.code, log: exited.code === 0 ? '' : exited.stdout + exited.stderr }).toEqual({ code: 0, log: '' });
      expect(stopped).toBeLessThan(grace * 1000 + 3000);
      expect(exited.stdout).not.toContain('stopping took longer');
      const outcomes = await load.stop();
      // every request written was answered; only new connections, once the listeners had closed, were refused
      expect(outcomes.filter((outcome) => outcome !== '200' && outcome !== 'ECONNREFUSED')).toEqual([]);
      expect(outcomes.filter((outcome) => outcome === '200').length).toBeGreaterThan(0);
    } finally {
      issuer.child.kill('SIGKILL');
    }
  });
});
