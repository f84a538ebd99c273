import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from '@jest/globals';
import { decodeProtectedHeader } from 'jose';

import { backends, databaseSuite, embedded } from '../support/backends.js';
import { freePort, startTestIssuer, testEnv } from '../support/issuer.js';
import { postForm, registerClient, type Credentials } from '../support/oauth.js';
import { DataDirInUseError, lockDataDir } from '../../src/storage/embedded-lock.js';
import { runIssuerProcess, spawnIssuer } from '../support/process.js';

const BUILT_LOCK = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/storage/embedded-lock.js');

/** Another process (the built lock module) that takes the data directory's lock and keeps it until killed. */
async function lockHolder(dataDir: string): Promise<ChildProcess> {
  const script = `import { lockDataDir } from ${JSON.stringify(BUILT_LOCK)}; await lockDataDir(process.argv[1], () => {}); console.log('locked'); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, dataDir], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => chunk.toString().includes('locked') && resolve());
    child.on('exit', (code) => reject(new Error(`the lock holder exited (${code})`)));
  });
  return child;
}

/** `n` turns of the event loop. */
async function hops(n: number): Promise<void> {
  for (let i = 0; i < n; i += 1) await new Promise((resolve) => setImmediate(resolve));
}

async function killNine(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

async function clientCredentialsToken(url: string, client: Credentials): Promise<string> {
  const response = await postForm(url, { grant_type: 'client_credentials' }, client);
  expect(response.status).toBe(200);
  return ((await response.json()) as { access_token: string }).access_token;
}

async function jwksKids(url: string): Promise<string[]> {
  const { keys } = (await (await fetch(`${url}/jwks`)).json()) as { keys: { kid: string }[] };
  return keys.map((key) => key.kid).sort();
}

describe.each(backends)('restart ($name)', (backend) => {
  const suite = databaseSuite(backend);

  it('when the issuer restarts, keys, clients and cookie keys are the same', async () => {
    const { database } = suite;
    const first = await startTestIssuer(database);
    const client = await registerClient(first.stores.clients, {
      name: 'restart',
      grants: ['client_credentials'],
      resources: ['https://api.example.com'],
    });
    const before = await clientCredentialsToken(first.url, client);
    const kidsBefore = await jwksKids(first.url);
    const cookieFile = path.join(database.dataDir, 'cookie-keys.json');
    const cookieKeysBefore = await fs.readFile(cookieFile, 'utf8');
    await first.close();

    const second = await startTestIssuer(database);
    try {
      expect(await jwksKids(second.url)).toEqual(kidsBefore);
      const after = await clientCredentialsToken(second.url, client);
      expect(decodeProtectedHeader(after).kid).toBe(decodeProtectedHeader(before).kid);
      expect(await fs.readFile(cookieFile, 'utf8')).toBe(cookieKeysBefore);
      expect((await fs.stat(cookieFile)).mode & 0o777).toBe(0o600);
    } finally {
      await second.close();
    }
  });
});

describe('embedded data directory ownership', () => {
  const suite = databaseSuite(embedded);

  it('when an issuer owns the embedded data directory, a second issuer process refuses to start', async () => {
    const { database } = suite;
    const running = await startTestIssuer(database);
    try {
      const second = await runIssuerProcess({ ...testEnv(database), PORT: String(await freePort()) });
      expect(second.code).toBe(1);
      expect(second.stderr.trimEnd().split('\n').at(-1)).toBe(
        `sigil: the embedded database in ${database.dataDir} is in use by another Sigil process; run one issuer per DATA_DIR (use DATABASE_URL for several replicas)`,
      );
      // the first issuer is unharmed
      expect((await fetch(`${running.url}/readyz`)).status).toBe(200);
    } finally {
      await running.close();
    }
  });

  it('when the owner has stopped, the data directory can be opened again', async () => {
    const first = await startTestIssuer(suite.database);
    await first.close();
    const second = await startTestIssuer(suite.database);
    await second.close();
  });

  it('after kill -9, an embedded issuer restarts at once: the dead holder\'s lock is taken over, no "in use" refusal', async () => {
    const { database } = suite;
    const env = { ...testEnv(database), PORT: String(await freePort()), LOG_LEVEL: 'info' };
    const first = spawnIssuer(env);
    await first.waitForOutput(/"msg":"sigil issuer listening"/u);
    first.child.kill('SIGKILL');
    expect((await first.exited).code).toBeNull();

    const killedAt = Date.now();
    const release = await lockDataDir(database.dataDir, () => undefined);
    expect(Date.now() - killedAt).toBeLessThan(3000);
    await release();

    const second = spawnIssuer(env);
    try {
      await second.waitForOutput(/"msg":"sigil issuer listening"/u);
    } finally {
      second.child.kill('SIGTERM');
    }
    const exited = await second.exited;
    expect(exited.stderr).not.toContain('in use');
    expect(exited.code).toBe(0);
  });

  it('when the holder is another live process, the lock is refused', async () => {
    const holder = await lockHolder(suite.database.dataDir);
    try {
      await expect(lockDataDir(suite.database.dataDir, () => undefined)).rejects.toBeInstanceOf(DataDirInUseError);
    } finally {
      await killNine(holder);
    }
  });

  it('when several starters race to take over a dead holder\'s lock, exactly one wins', async () => {
    const { dataDir } = suite.database;
    // the starters set off a few event-loop turns apart, so that some decide while another is already taking over
    for (let round = 0; round < 5; round += 1) {
      await killNine(await lockHolder(dataDir));
      const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => hops(i * 3).then(() => lockDataDir(dataDir, () => undefined))));
      const won = results.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
      const refused = results.flatMap((result) => (result.status === 'rejected' ? [result.reason as unknown] : []));
      for (const release of won) await release();
      expect(won).toHaveLength(1);
      expect(refused.filter((reason) => !(reason instanceof DataDirInUseError))).toEqual([]);
    }
    // released: the next one takes it at once
    await (await lockDataDir(dataDir, () => undefined))();
  });
});
