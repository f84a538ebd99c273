import fs from 'node:fs/promises';
import path from 'node:path';

import { describe, expect, it } from '@jest/globals';
import { decodeProtectedHeader } from 'jose';

import { backends, databaseSuite, embedded } from '../support/backends.js';
import { freePort, startTestIssuer, testEnv } from '../support/issuer.js';
import { postForm, registerClient, type Credentials } from '../support/oauth.js';
import { runIssuerProcess } from '../support/process.js';

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
});
