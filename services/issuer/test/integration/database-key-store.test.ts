import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { decodeProtectedHeader } from 'jose';

import { KeyCipher } from '../../src/keys/encryption.js';
import { openDatabase, type Database } from '../../src/storage/db.js';
import { backends, databaseSuite, describeOnPostgres, type TestDatabase } from '../support/backends.js';
import { sigil, sigilJson } from '../support/cli.js';
import { eventually } from '../support/http.js';
import { startTestIssuer, testEnv, type TestIssuer } from '../support/issuer.js';
import { postForm, registerClient, type Credentials } from '../support/oauth.js';
import { runIssuerProcess } from '../support/process.js';

const AUDIENCE = 'https://api.example.com';
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi'] as const;
const encryptionKey = () => randomBytes(32).toString('base64url');

interface SigningKeyRow {
  id: string;
  state: string;
  public_jwk: Record<string, unknown>;
  sealed_private: string;
}

const jwksOf = async (issuer: TestIssuer) => (await (await fetch(`${issuer.url}/jwks`)).json()) as { keys: { kid: string }[] };
const kidsOf = async (issuer: TestIssuer) => (await jwksOf(issuer)).keys.map((key) => key.kid).sort();
const jsonFilesIn = async (dir: string) => (await fs.readdir(dir).catch(() => [] as string[])).filter((name) => name.endsWith('.json'));

/** A second pair of directories beside the suite's: another machine's DATA_DIR and KEYS_DIR. */
async function otherMachine(database: TestDatabase, name: string) {
  const root = path.dirname(database.dataDir);
  return { dataDir: path.join(root, `${name}-data`), keysDir: path.join(root, `${name}-keys`) };
}

async function withDatabase<T>(database: TestDatabase, use: (db: Database) => Promise<T>): Promise<T> {
  const opened = await openDatabase({ databaseUrl: database.databaseUrl, dataDir: database.dataDir });
  try {
    return await use(opened);
  } finally {
    await opened.close();
  }
}


describeOnPostgres('the database key store: replicas on two machines share nothing but PostgreSQL ($name)', (backend) => {
  const suite = databaseSuite(backend);
  const secret = encryptionKey();
  let first: TestIssuer;
  let second: TestIssuer;
  let client: Credentials;
  let machines: { dataDir: string; keysDir: string }[];

  beforeAll(async () => {
    machines = [await otherMachine(suite.database, 'a'), await otherMachine(suite.database, 'b')];
    const env = (index: number) => ({ ...machines[index], DATA_DIR: machines[index]?.dataDir ?? '', KEYS_DIR: machines[index]?.keysDir ?? '', KEY_STORE: 'database', KEYS_ENCRYPTION_KEY: secret });
    // started together: the empty store gets exactly one first key
    [first, second] = await Promise.all([startTestIssuer(suite.database, env(0)), startTestIssuer(suite.database, env(1))]);
    client = await registerClient(first.stores.clients, { name: 'replicas', grants: ['client_credentials'], resources: [AUDIENCE] });
  }, 60_000);

  afterAll(async () => {
    await first?.close();
    await second?.close();
  });

  const token = async (issuer: TestIssuer) => {
    const response = await postForm(issuer.url, { grant_type: 'client_credentials' }, client);
    expect(response.status).toBe(200);
    return ((await response.json()) as { access_token: string }).access_token;
  };

  it('when two issuers start at once on an empty store, they publish the same single key, and no key file appears on either machine', async () => {
    const [a, b] = [await jwksOf(first), await jwksOf(second)];
    expect(a.keys).toHaveLength(1);
    expect(b).toEqual(a);
    expect(decodeProtectedHeader(await token(second)).kid).toBe(a.keys[0]?.kid);
    for (const machine of machines) expect(await jsonFilesIn(machine.keysDir)).toEqual([]);
    const rows = await first.db<SigningKeyRow>('signing_keys').select('*');
    expect(rows.map((row) => row.state)).toEqual(['current']);
  });

  it('holds no private member in clear: the row has the public members only, and the sealed value opens only with the key, for its own kid', async () => {
    const [row] = await first.db<SigningKeyRow>('signing_keys').select('*');
    expect(Object.keys(row?.public_jwk ?? {}).sort()).toEqual(['alg', 'e', 'kid', 'kty', 'n', 'use']);
    const cipher = new KeyCipher([Buffer.from(secret, 'base64url')]);
    const members = JSON.parse(cipher.open(row?.id ?? '', row?.sealed_private ?? '')) as Record<string, string>;
    const everything = JSON.stringify(await first.db.raw('SELECT * FROM signing_keys'));
    for (const member of PRIVATE_MEMBERS) {
      expect(members[member]).toMatch(/^[A-Za-z0-9_-]{20,}$/u);
      expect(everything).not.toContain(members[member]);
    }
    // bound to its kid: the same sealed value under another kid does not open
    expect(() => cipher.open('another-kid', row?.sealed_private ?? '')).toThrow(/does not decrypt with KEYS_ENCRYPTION_KEY/u);
    expect(() => new KeyCipher([Buffer.from(encryptionKey(), 'base64url')]).open(row?.id ?? '', row?.sealed_private ?? '')).toThrow(
      /is encrypted under a key that is not in KEYS_ENCRYPTION_KEY/u,
    );
  });

  it('when keys are rotated through one machine, the other signs with the new key and publishes the same set within 2 s', async () => {
    const env = { ...testEnv(suite.database), DATA_DIR: machines[0]?.dataDir ?? '', KEYS_DIR: machines[0]?.keysDir ?? '', KEY_STORE: 'database', KEYS_ENCRYPTION_KEY: secret };
    const refused = await sigil(['keys', 'rotate'], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^sigil: no next key was published: published [A-Za-z0-9_-]{43} now, which may sign from /u);
    const rotation = await sigilJson<{ current: string; retired: string; next: string }>(['keys', 'rotate', '--force'], env);
    const rotatedAt = Date.now();
    await eventually(async () => (decodeProtectedHeader(await token(second)).kid === rotation.current ? true : undefined), 5000, 20);
    await eventually(async () => ((await kidsOf(second)).join() === [rotation.current, rotation.retired, rotation.next].sort().join() ? true : undefined), 5000, 20);
    expect(Date.now() - rotatedAt).toBeLessThan(2000);
    expect(await kidsOf(first)).toEqual(await kidsOf(second));
    for (const machine of machines) expect(await jsonFilesIn(machine.keysDir)).toEqual([]);
  });
});

describe.each(backends)('the database key store ($name)', (backend) => {
  const suite = databaseSuite(backend);
  const secret = encryptionKey();
  const env = () => ({ ...testEnv(suite.database), KEY_STORE: 'database', KEYS_ENCRYPTION_KEY: secret });

  it('when KEYS_ENCRYPTION_KEY is missing, the issuer exits 2 with one line naming it', async () => {
    const result = await runIssuerProcess({ ...testEnv(suite.database), PORT: '0', KEY_STORE: 'database' });
    expect(result.code).toBe(2);
    expect(result.stderr).toBe('sigil: invalid configuration: KEYS_ENCRYPTION_KEY is required when KEY_STORE=database\n');
  });

  it('when the file store holds keys, keys import moves them in (states kept, run twice harmless) and the issuer signs with them', async () => {
    const fileEnv = testEnv(suite.database, { KEYS_DIR: `${suite.database.keysDir}-files` });
    const current = await sigilJson<{ kid: string }>(['keys', 'generate'], fileEnv);
    const next = await sigilJson<{ kid: string }>(['keys', 'generate'], fileEnv);
    const imported = await sigilJson<{ imported: string[]; skipped: string[] }>(['keys', 'import', '--from-dir', `${suite.database.keysDir}-files`], env());
    expect({ imported: imported.imported.sort(), skipped: imported.skipped }).toEqual({ imported: [current.kid, next.kid].sort(), skipped: [] });
    const again = await sigilJson<{ imported: string[]; skipped: string[] }>(['keys', 'import', '--from-dir', `${suite.database.keysDir}-files`], env());
    expect({ imported: again.imported, skipped: again.skipped.sort() }).toEqual({ imported: [], skipped: [current.kid, next.kid].sort() });
    const listed = await sigilJson<{ keys: { kid: string; state: string }[] }>(['keys', 'list'], env());
    expect(Object.fromEntries(listed.keys.map((key) => [key.kid, key.state]))).toEqual({ [current.kid]: 'current', [next.kid]: 'next' });

    const issuer = await startTestIssuer(suite.database, { KEY_STORE: 'database', KEYS_ENCRYPTION_KEY: secret });
    try {
      const client = await registerClient(issuer.stores.clients, { name: 'imported', grants: ['client_credentials'], resources: [AUDIENCE] });
      const response = await postForm(issuer.url, { grant_type: 'client_credentials' }, client);
      expect(decodeProtectedHeader(((await response.json()) as { access_token: string }).access_token).kid).toBe(current.kid);
    } finally {
      await issuer.close();
    }
    // the files are left where they were; nothing was written beside the database
    expect((await jsonFilesIn(suite.database.keysDir))).toEqual([]);
  });

  it('when KEYS_ENCRYPTION_KEY does not open the stored keys, the issuer exits 1 with one line naming the key, no stack', async () => {
    const result = await runIssuerProcess({ ...env(), PORT: '0', WEB_CONCURRENCY: '1', KEYS_ENCRYPTION_KEY: encryptionKey() });
    expect(result.code).toBe(1);
    const lines = result.stderr.trimEnd().split('\n').filter((line) => !line.includes('Unsupported runtime') && line.trim() !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^sigil: signing key [A-Za-z0-9_-]{43} is encrypted under a key that is not in KEYS_ENCRYPTION_KEY \(key id [A-Za-z0-9_-]{8}; configured: [A-Za-z0-9_-]{8}\)$/u);
    expect(`${result.stdout}${result.stderr}`).not.toMatch(/\n\s+at /u);
  });

  it('when the encryption key is replaced, keys reencrypt re-seals every key with the first one, and the old one can then go', async () => {
    const replacement = encryptionKey();
    const both = { ...env(), KEYS_ENCRYPTION_KEY: `${replacement},${secret}` };
    expect((await sigilJson<{ keys: unknown[] }>(['keys', 'list'], both)).keys.length).toBeGreaterThan(0);
    const result = await sigilJson<{ reencrypted: number; total: number }>(['keys', 'reencrypt'], both);
    expect(result.reencrypted).toBe(result.total);
    expect((await sigilJson<{ reencrypted: number }>(['keys', 'reencrypt'], both)).reencrypted).toBe(0);
    const onlyNew = { ...env(), KEYS_ENCRYPTION_KEY: replacement };
    expect((await sigilJson<{ keys: unknown[] }>(['keys', 'list'], onlyNew)).keys).toHaveLength(result.total);
    const old = await sigil(['keys', 'list'], env());
    expect(old.code).toBe(1);
    expect(old.stderr).toMatch(/^sigil: signing key [A-Za-z0-9_-]{43} is encrypted under a key that is not in KEYS_ENCRYPTION_KEY/u);
    await withDatabase(suite.database, async (db) => {
      const rows = await db.knex<SigningKeyRow>('signing_keys').select('sealed_private');
      const id = new KeyCipher([Buffer.from(replacement, 'base64url')]).primaryId;
      expect(rows.map((row) => KeyCipher.sealedWith(row.sealed_private))).toEqual(rows.map(() => id));
    });
  });
});
