import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

import { afterAll, describe, expect, it } from '@jest/globals';

import { generateRsaKey } from '../../src/keys/key-store.js';
import { backends, temporaryDir } from '../support/backends.js';
import { sigil, sigilJson } from '../support/cli.js';
import { freePort, issuerSuite, testEnv } from '../support/issuer.js';

interface Report {
  ok: boolean;
  checks: { id: string; status: 'pass' | 'warn' | 'fail'; message: string; section: string }[];
}

const DAY = 86_400;
/** A stored hash at parameters far below OWASP's (m=4 MiB, t=1): its salt and digest must never be printed. */
const WEAK_HASH = '$argon2id$v=19$m=4096,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2g';
/** 32 zero bytes in base64url: the length KEYS_ENCRYPTION_KEY requires, and no randomness at all. */
const ZERO_KEY = 'A'.repeat(43);

/** Runs `sigil doctor --json`: its exit code and its one JSON object. */
async function doctor(env: Record<string, string>): Promise<{ code: number | null; report: Report; stdout: string; stderr: string }> {
  const result = await sigil(['doctor', '--json'], env);
  return { code: result.code, report: JSON.parse(result.stdout) as Report, stdout: result.stdout, stderr: result.stderr };
}

/** Directories the tests make beside the suite's own, removed at the end. */
const madeDirs: string[] = [];
afterAll(async () => {
  await Promise.all(madeDirs.map((dir) => fs.rm(dir, { recursive: true, force: true })));
});

async function madeDir(prefix: string): Promise<string> {
  const dir = await temporaryDir(prefix);
  madeDirs.push(dir);
  return dir;
}

const failing = (report: Report) => report.checks.filter((check) => check.status === 'fail').map((check) => check.id);

/**
 * A KEYS_DIR of the file store that is unsafe but readable: the issuer's current key, marked
 * created 200 days ago (0600), a next key published a minute ago (0600), and the directory
 * itself open to group and others (0755).
 */
async function staleKeysDir(issuerKeysDir: string): Promise<string> {
  const dir = await madeDir('doctor-keys');
  const [currentFile] = (await fs.readdir(issuerKeysDir)).filter((name) => name.endsWith('.json'));
  if (currentFile === undefined) throw new Error('the issuer has no key file');
  const current = JSON.parse(await fs.readFile(path.join(issuerKeysDir, currentFile), 'utf8')) as Record<string, unknown>;
  await fs.writeFile(path.join(dir, currentFile), JSON.stringify({ ...current, created_at: new Date(Date.now() - 200 * DAY * 1000).toISOString(), activated_at: new Date(Date.now() - 200 * DAY * 1000).toISOString() }), { mode: 0o600 });
  const next = await generateRsaKey();
  await fs.writeFile(path.join(dir, `${next.kid}.json`), JSON.stringify({ ...next, state: 'next', created_at: new Date(Date.now() - 60_000).toISOString() }), { mode: 0o600 });
  await fs.chmod(dir, 0o755);
  return dir;
}

describe.each(backends)('sigil doctor ($name, beside a running issuer)', (backend) => {
  const suite = issuerSuite(backend);

  /** Production values that pass: https issuer, cookie keys, https CORS, automatic rotation. */
  const safeEnv = () =>
    testEnv(suite.database, {
      NODE_ENV: 'production',
      ISSUER: 'https://auth.example.com',
      COOKIE_KEYS: randomBytes(32).toString('base64url'),
      CORS_ORIGINS: 'https://app.example.com',
      KEY_ROTATION_INTERVAL: String(90 * DAY),
      KEYS_ENCRYPTION_KEY: randomBytes(32).toString('base64url'),
    });

  // the safe case runs first: the unsafe one then adds unsafe rows to the same database
  it('when the configuration and data are safe, no check fails, each check id appears once with a section, and the exit code is 0', async () => {
    const env = testEnv(suite.database);
    await sigilJson(['clients', 'create', '--name', 'web', '--grant', 'authorization_code', '--redirect-uri', 'https://app.example.com/cb', '--redirect-uri', 'http://127.0.0.1:8080/cb', '--resource', 'https://api.example.com'], env);
    await sigilJson(['clients', 'create', '--name', 'api', '--resource', 'https://api.example.com', '--scope', 'orders:read'], env);
    await sigilJson(['api-keys', 'create', '--name', 'ci', '--resource', 'https://api.example.com', '--expires-in', String(30 * DAY)], env);
    expect((await sigil(['users', 'create', '--username', 'alice', '--password-stdin', '--json'], env, 'correct horse battery\n')).code).toBe(0);

    const { code, report } = await doctor(safeEnv());
    expect(failing(report)).toEqual([]);
    expect(report.ok).toBe(true);
    expect(code).toBe(0);
    const ids = report.checks.map((check) => check.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual(expect.arrayContaining(['issuer.https', 'keys.age', 'database.reachable', 'database.notifications', 'users.password-hashes']));
    for (const check of report.checks) expect(check.section).not.toBe('');
    expect(report.checks.find((check) => check.id === 'database.notifications')).toMatchObject({ status: 'pass' });
    expect(report.checks.find((check) => check.id === 'users.password-hashes')).toMatchObject({ status: 'pass' });
  });

  it('when the configuration and data are unsafe, every failing check is reported once, nothing secret is printed, and the exit code is 1', async () => {
    const env = testEnv(suite.database);
    const db = suite.issuer.db;
    const plain = await sigilJson(['clients', 'create', '--name', 'plain', '--grant', 'authorization_code', '--redirect-uri', 'https://old.example.com/cb', '--resource', 'https://api.example.com'], env);
    // stored before redirect URIs were checked: only SQL can make one now
    await db('clients').where({ id: plain['client_id'] }).update({ redirect_uris: JSON.stringify(['http://old.example.com/cb']) });
    await sigilJson(['clients', 'create', '--name', 'ropc', '--grant', 'password', '--resource', 'https://api.example.com'], env);
    await sigilJson(['clients', 'create', '--name', 'lost', '--grant', 'client_credentials'], env);
    const bare = await sigilJson(['api-keys', 'create', '--name', 'legacy', '--resource', 'https://api.example.com'], env);
    await db('api_keys').where({ id: bare['id'] }).update({ resources: JSON.stringify([]) });
    await db('users').where({ username: 'alice' }).update({ password_hash: WEAK_HASH });

    const unsafe: Record<string, string> = {
      ...testEnv(suite.database),
      NODE_ENV: 'production',
      ISSUER: 'http://auth.example.com',
      ALLOW_INSECURE_ISSUER: 'true',
      CORS_ORIGINS: 'http://app.example.com',
      KEYS_DIR: await staleKeysDir(suite.database.keysDir),
      KEY_ROTATION_INTERVAL: String(90 * DAY),
      KEYS_ENCRYPTION_KEY: ZERO_KEY,
      ACCESS_TOKEN_TTL: '7200',
      ...(backend.name === 'postgres' ? { WEB_CONCURRENCY: '64', DATABASE_POOL_MAX: '100' } : {}),
    };
    const { code, report, stdout, stderr } = await doctor(unsafe);
    expect(failing(report).sort()).toEqual(
      [
        'issuer.https',
        'cookies.keys',
        'cors.origins',
        'keys.age',
        'keys.file-modes',
        'keys.encryption-key',
        'clients.redirect-uris',
        'api-keys.resources',
        // the embedded database has one owner: its budget is not applicable
        ...(backend.name === 'postgres' ? ['database.connections'] : []),
      ].sort(),
    );
    const ids = report.checks.map((check) => check.id);
    expect(new Set(ids).size).toBe(ids.length);
    const status = new Map(report.checks.map((check) => [check.id, check.status]));
    for (const id of ['tokens.access-ttl', 'keys.next-lead', 'clients.password-grant', 'clients.resources', 'api-keys.expiry', 'users.password-hashes']) {
      expect([id, status.get(id)]).toEqual([id, 'warn']);
    }
    expect(report.ok).toBe(false);
    expect(code).toBe(1);
    expect(stderr).toBe(`sigil: ${failing(report).length} check(s) failed\n`);
    expect(stdout.trim().split('\n')).toHaveLength(1);
    for (const secret of [ZERO_KEY, 'c2FsdHNhbHRzYWx0', 'aGFzaGhhc2hoYXNoaGFzaGhhc2g']) expect(stdout).not.toContain(secret);
  });

  it('when the keys cannot be read and the database is unreachable, keys.store and database.reachable fail and the data checks are not checked', async () => {
    const keysDir = await madeDir('doctor-open-keys');
    const [currentFile] = (await fs.readdir(suite.database.keysDir)).filter((name) => name.endsWith('.json'));
    if (currentFile === undefined) throw new Error('the issuer has no key file');
    await fs.copyFile(path.join(suite.database.keysDir, currentFile), path.join(keysDir, currentFile));
    await fs.chmod(path.join(keysDir, currentFile), 0o644);
    const env = { ...testEnv(suite.database), KEYS_DIR: keysDir, DATABASE_URL: `postgres://sigil@127.0.0.1:${await freePort()}/sigil`, DATABASE_TIMEOUT_MS: '1000' };
    const { code, report } = await doctor(env);
    expect(failing(report).sort()).toEqual(['database.reachable', 'keys.file-modes', 'keys.store']);
    expect(report.checks.find((check) => check.id === 'keys.store')?.message).toContain('readable by other users');
    expect(report.checks.find((check) => check.id === 'clients.redirect-uris')).toMatchObject({ status: 'warn', message: expect.stringContaining('not checked') });
    expect(code).toBe(1);
  });

  it('when run without --json, prints one line per check with its status and section', async () => {
    const result = await sigil(['doctor'], { ...testEnv(suite.database), KEY_ROTATION_INTERVAL: String(90 * DAY) });
    const lines = result.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^status\s+id\s+section\s+message$/u);
    expect(lines.some((line) => /^pass\s+database\.reachable\s+README: Database outages\s+/u.test(line))).toBe(true);
    // the unsafe rows of the test before: a failure, exit 1
    expect(lines.some((line) => /^fail\s+clients\.redirect-uris\s+/u.test(line))).toBe(true);
    expect(result.code).toBe(1);
  });
});
