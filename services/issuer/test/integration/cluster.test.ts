import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from '@jest/globals';

import { backends, databaseSuite, type TestDatabase } from '../support/backends.js';
import { sigilJson } from '../support/cli.js';
import { freePort, testEnv } from '../support/issuer.js';
import { postForm } from '../support/oauth.js';
import { runIssuerProcess } from '../support/process.js';

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

describe.each(backends)('cluster workers ($name)', (backend) => {
  const suite = databaseSuite(backend);

  it(cases[backend.name].title, async () => {
    await cases[backend.name].run(suite.database);
  });
});
