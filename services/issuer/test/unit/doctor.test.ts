import { randomBytes } from 'node:crypto';

import { describe, expect, it } from '@jest/globals';

import { argon2idParameters, CHECK_IDS, runDoctor, type DataFacts, type DoctorConfig, type DoctorKey, type DoctorSources, type KeyFileModes } from '../../src/domain/doctor.js';

const NOW = new Date('2026-12-01T12:00:00Z');
const DAY = 86_400;
const ago = (seconds: number) => new Date(NOW.getTime() - seconds * 1000).toISOString();

const safeConfig: DoctorConfig = {
  issuer: 'https://auth.example.com',
  production: true,
  databaseUrl: 'postgres://db.internal/sigil',
  cookieKeys: [randomBytes(32).toString('base64url')],
  keyStore: 'files',
  keysEncryptionKeys: [],
  keyRotationInterval: 90 * DAY,
  keyPublishLead: 3600,
  corsOrigins: ['https://app.example.com'],
  accessTokenTtl: 900,
  webConcurrency: 4,
  databasePoolMax: 10,
  argon2: { memoryKib: 19_456, timeCost: 2, parallelism: 1 },
};

const safeKeys: DoctorKey[] = [
  { kid: 'current-kid', state: 'current', createdAt: ago(10 * DAY), activatedAt: undefined, retiredAt: undefined },
  { kid: 'next-kid', state: 'next', createdAt: ago(2 * DAY), activatedAt: undefined, retiredAt: undefined },
];

const safeModes: KeyFileModes = { directory: 0o700, files: [{ name: 'current-kid.json', mode: 0o600 }, { name: 'next-kid.json', mode: 0o600 }] };

const safeData: DataFacts = {
  reachable: true,
  latencyMs: 2,
  notificationsLive: true,
  connections: { max: 100, reserved: 3 },
  clients: [
    { id: 'web', grants: ['authorization_code', 'refresh_token'], redirectUris: ['https://app.example.com/cb', 'http://127.0.0.1/cb'], resources: ['https://api.example.com'], accessTokenTtl: null },
    { id: 'service', grants: [], redirectUris: [], resources: ['https://api.example.com'], accessTokenTtl: null },
  ],
  apiKeys: [{ id: 'k1', resources: 1, expiresAt: ago(-DAY) }],
  passwordHashes: [{ parameters: '$argon2id$v=19$m=19456,p=1,t=2', users: 3 }],
};

function sources(overrides: Partial<DoctorSources> = {}): DoctorSources {
  return {
    config: safeConfig,
    now: NOW,
    keys: () => Promise.resolve(safeKeys),
    keyFileModes: () => Promise.resolve(safeModes),
    data: () => Promise.resolve(safeData),
    ...overrides,
  };
}

async function statusOf(id: string, overrides: Partial<DoctorSources>) {
  const report = await runDoctor(sources(overrides));
  const found = report.checks.filter((check) => check.id === id);
  expect(found).toHaveLength(1);
  return found[0];
}

describe('doctor', () => {
  it('when everything is safe, every check passes, each id once, in order, with a section and a one-line message', async () => {
    const report = await runDoctor(sources());
    expect(report.checks.map((check) => check.id)).toEqual([...CHECK_IDS]);
    expect(report.checks.filter((check) => check.status !== 'pass')).toEqual([]);
    expect(report.ok).toBe(true);
    for (const check of report.checks) {
      expect(check.section).not.toBe('');
      expect(check.message).not.toMatch(/[\r\n]/u);
    }
  });

  it('when ISSUER is http in production (allowed by ALLOW_INSECURE_ISSUER), issuer.https fails; outside production it warns', async () => {
    expect(await statusOf('issuer.https', { config: { ...safeConfig, issuer: 'http://auth.example.com' } })).toMatchObject({ status: 'fail' });
    expect(await statusOf('issuer.https', { config: { ...safeConfig, issuer: 'http://localhost:4000', production: false } })).toMatchObject({ status: 'warn' });
  });

  it('when COOKIE_KEYS is missing, cookies.keys fails in production and warns elsewhere; a short or hand-typed key fails, and no key is echoed', async () => {
    expect(await statusOf('cookies.keys', { config: { ...safeConfig, cookieKeys: undefined } })).toMatchObject({ status: 'fail' });
    expect(await statusOf('cookies.keys', { config: { ...safeConfig, cookieKeys: undefined, production: false } })).toMatchObject({ status: 'warn' });
    expect(await statusOf('cookies.keys', { config: { ...safeConfig, cookieKeys: ['short-secret-value'] } })).toMatchObject({ status: 'fail' });
    const typed = 'abababababababababababababababab';
    const guessable = await statusOf('cookies.keys', { config: { ...safeConfig, cookieKeys: [typed] } });
    expect(guessable).toMatchObject({ status: 'fail' });
    expect(guessable?.message).not.toContain(typed);
  });

  it('when a CORS origin is http, cors.origins fails (a loopback one only warns outside production)', async () => {
    expect(await statusOf('cors.origins', { config: { ...safeConfig, corsOrigins: ['http://app.example.com'] } })).toMatchObject({ status: 'fail' });
    expect(await statusOf('cors.origins', { config: { ...safeConfig, corsOrigins: ['http://localhost:3000'] } })).toMatchObject({ status: 'fail' });
    expect(await statusOf('cors.origins', { config: { ...safeConfig, production: false, corsOrigins: ['http://localhost:3000'] } })).toMatchObject({ status: 'warn' });
  });

  it('when ACCESS_TOKEN_TTL or a client\'s own lifetime is over an hour, tokens.access-ttl warns', async () => {
    expect(await statusOf('tokens.access-ttl', { config: { ...safeConfig, accessTokenTtl: 7200 } })).toMatchObject({ status: 'warn' });
    const data = { ...safeData, clients: [...safeData.clients, { id: 'slow', grants: ['client_credentials'], redirectUris: [], resources: ['https://api.example.com'], accessTokenTtl: 86_400 }] };
    expect(await statusOf('tokens.access-ttl', { data: () => Promise.resolve(data) })).toMatchObject({ status: 'warn', message: expect.stringContaining('slow') });
    expect(await statusOf('tokens.access-ttl', { config: { ...safeConfig, accessTokenTtl: 3600 } })).toMatchObject({ status: 'pass' });
  });

  it('when argon2id parameters are below OWASP\'s, passwords.argon2 fails', async () => {
    expect(await statusOf('passwords.argon2', { config: { ...safeConfig, argon2: { memoryKib: 4096, timeCost: 2, parallelism: 1 } } })).toMatchObject({ status: 'fail' });
  });

  it('when the keys cannot be read, keys.store fails with the error\'s message; two current keys fail; none yet warns', async () => {
    const broken = await statusOf('keys.store', { keys: () => Promise.reject(new Error('keys/a.json is readable by other users')) });
    expect(broken).toMatchObject({ status: 'fail', message: expect.stringContaining('readable by other users') });
    const twice = safeKeys.map((key) => ({ ...key, state: 'current' as const }));
    expect(await statusOf('keys.store', { keys: () => Promise.resolve(twice) })).toMatchObject({ status: 'fail' });
    expect(await statusOf('keys.store', { keys: () => Promise.resolve([]) })).toMatchObject({ status: 'warn' });
  });

  it('when the current key is older than KEY_ROTATION_INTERVAL, keys.age warns, and past it by more than the lead fails; activatedAt counts over createdAt', async () => {
    const aged = (seconds: number, activatedAt?: string): DoctorSources['keys'] => () =>
      Promise.resolve([{ kid: 'c', state: 'current', createdAt: ago(seconds), activatedAt, retiredAt: undefined }]);
    expect(await statusOf('keys.age', { keys: aged(90 * DAY + 1800) })).toMatchObject({ status: 'warn' });
    expect(await statusOf('keys.age', { keys: aged(90 * DAY + 3601) })).toMatchObject({ status: 'fail' });
    expect(await statusOf('keys.age', { keys: aged(200 * DAY, ago(DAY)) })).toMatchObject({ status: 'pass' });
    expect(await statusOf('keys.age', { config: { ...safeConfig, keyRotationInterval: undefined } })).toMatchObject({ status: 'warn', message: expect.stringContaining('rotation only by command') });
  });

  it('when the next key is younger than KEY_PUBLISH_LEAD, keys.next-lead warns with the time left', async () => {
    const keys = [safeKeys[0] as DoctorKey, { kid: 'n', state: 'next' as const, createdAt: ago(600), activatedAt: undefined, retiredAt: undefined }];
    expect(await statusOf('keys.next-lead', { keys: () => Promise.resolve(keys) })).toMatchObject({ status: 'warn', message: expect.stringContaining('50 min') });
  });

  it('when KEYS_DIR is open to others or a key file is not 0600, keys.file-modes fails; with the database store it is not applicable', async () => {
    expect(await statusOf('keys.file-modes', { keyFileModes: () => Promise.resolve({ ...safeModes, directory: 0o755 }) })).toMatchObject({ status: 'fail' });
    const open = { directory: 0o700, files: [{ name: 'a.json', mode: 0o644 }] };
    expect(await statusOf('keys.file-modes', { keyFileModes: () => Promise.resolve(open) })).toMatchObject({ status: 'fail', message: expect.stringContaining('a.json 0644') });
    const database = { ...safeConfig, keyStore: 'database' as const, keysEncryptionKeys: [randomBytes(32)] };
    expect(await statusOf('keys.file-modes', { config: database, keyFileModes: () => Promise.reject(new Error('not asked')) })).toMatchObject({ status: 'pass' });
  });

  it('when KEYS_ENCRYPTION_KEY is all zeros, low in entropy or repeated, keys.encryption-key fails; random keys pass', async () => {
    const zeros = Buffer.alloc(32);
    const low = Buffer.from(Array.from({ length: 32 }, (_, i) => i % 4));
    const random = randomBytes(32);
    for (const keys of [[zeros], [low], [random, Buffer.from(random)]]) {
      expect(await statusOf('keys.encryption-key', { config: { ...safeConfig, keyStore: 'database', keysEncryptionKeys: keys } })).toMatchObject({ status: 'fail' });
    }
    expect(await statusOf('keys.encryption-key', { config: { ...safeConfig, keyStore: 'database', keysEncryptionKeys: [] } })).toMatchObject({ status: 'fail' });
    expect(await statusOf('keys.encryption-key', { config: { ...safeConfig, keyStore: 'database', keysEncryptionKeys: [random, randomBytes(32)] } })).toMatchObject({ status: 'pass' });
  });

  it('when the database cannot be asked, database.reachable fails with the error and the data checks say they were not checked', async () => {
    const report = await runDoctor(sources({ data: () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:5432')) }));
    expect(report.ok).toBe(false);
    expect(report.checks.find((check) => check.id === 'database.reachable')).toMatchObject({ status: 'fail', message: expect.stringContaining('ECONNREFUSED') });
    expect(report.checks.filter((check) => check.message.startsWith('not checked')).map((check) => check.id)).toContain('clients.redirect-uris');
    expect(report.checks.map((check) => check.id)).toEqual([...CHECK_IDS]);
  });

  it('when notifications do not arrive, database.notifications warns', async () => {
    expect(await statusOf('database.notifications', { data: () => Promise.resolve({ ...safeData, notificationsLive: false }) })).toMatchObject({ status: 'warn' });
  });

  it('when WEB_CONCURRENCY × (DATABASE_POOL_MAX + 1) exceeds max_connections, database.connections fails; near it warns; embedded passes', async () => {
    expect(await statusOf('database.connections', { config: { ...safeConfig, webConcurrency: 10, databasePoolMax: 10 } })).toMatchObject({ status: 'fail', message: expect.stringContaining('= 110') });
    expect(await statusOf('database.connections', { config: { ...safeConfig, webConcurrency: 8, databasePoolMax: 10 } })).toMatchObject({ status: 'warn' });
    expect(await statusOf('database.connections', { config: { ...safeConfig, databaseUrl: undefined, webConcurrency: 64, databasePoolMax: 1000 } })).toMatchObject({ status: 'pass' });
  });

  it('when a client has a non-loopback http redirect URI, the password grant or a grant without resource, the client checks name it', async () => {
    const data: DataFacts = {
      ...safeData,
      clients: [
        { id: 'plain', grants: ['authorization_code'], redirectUris: ['http://app.example.com/cb'], resources: ['https://api.example.com'], accessTokenTtl: null },
        { id: 'ropc', grants: ['password'], redirectUris: [], resources: ['https://api.example.com'], accessTokenTtl: null },
        { id: 'lost', grants: ['client_credentials'], redirectUris: [], resources: [], accessTokenTtl: null },
      ],
    };
    const report = await runDoctor(sources({ data: () => Promise.resolve(data) }));
    const byId = new Map(report.checks.map((check) => [check.id, check]));
    expect(byId.get('clients.redirect-uris')).toMatchObject({ status: 'fail', message: expect.stringContaining('plain') });
    expect(byId.get('clients.password-grant')).toMatchObject({ status: 'warn', message: expect.stringContaining('ropc') });
    expect(byId.get('clients.resources')).toMatchObject({ status: 'warn', message: expect.stringContaining('lost') });
  });

  it('when tokens are issued for an audience no resource service client declares, clients.audience-scopes warns naming it; the admin audience is the issuer\'s own', async () => {
    const admin = `${safeConfig.issuer}/admin`;
    const data: DataFacts = {
      ...safeData,
      clients: [
        ...safeData.clients,
        { id: 'machine', grants: ['client_credentials'], redirectUris: [], resources: ['https://api.example.com', 'https://reports.example.com'], accessTokenTtl: null },
        { id: 'admin', grants: ['client_credentials'], redirectUris: [], resources: [admin], accessTokenTtl: null },
      ],
    };
    const check = await statusOf('clients.audience-scopes', { data: () => Promise.resolve(data) });
    expect(check).toMatchObject({ status: 'warn', message: expect.stringContaining('https://reports.example.com') });
    expect(check?.message).not.toContain('https://api.example.com,');
    expect(check?.message).not.toContain(admin);
    // declared by its service's own client (which may exchange tokens): passes
    const declared = { ...data, clients: [...data.clients, { id: 'reports', grants: ['urn:ietf:params:oauth:grant-type:token-exchange'], redirectUris: [], resources: ['https://reports.example.com'], accessTokenTtl: null }] };
    expect(await statusOf('clients.audience-scopes', { data: () => Promise.resolve(declared) })).toMatchObject({ status: 'pass' });
  });

  it('when an API key has no resources, api-keys.resources fails; without expiry, api-keys.expiry warns', async () => {
    const data = { ...safeData, apiKeys: [{ id: 'bare', resources: 0, expiresAt: ago(-DAY) }, { id: 'forever', resources: 1, expiresAt: null }] };
    const report = await runDoctor(sources({ data: () => Promise.resolve(data) }));
    expect(report.checks.find((check) => check.id === 'api-keys.resources')).toMatchObject({ status: 'fail', message: expect.stringContaining('bare') });
    expect(report.checks.find((check) => check.id === 'api-keys.expiry')).toMatchObject({ status: 'warn', message: expect.stringContaining('forever') });
  });

  it('when stored hashes are below OWASP\'s parameters or not argon2id, users.password-hashes warns with a count', async () => {
    const data = {
      ...safeData,
      passwordHashes: [
        { parameters: '$argon2id$v=19$m=4096,t=3,p=1', users: 2 },
        { parameters: '$2b$10', users: 1 },
        { parameters: '$argon2id$v=19$m=65536,p=4,t=3', users: 5 },
      ],
    };
    expect(await statusOf('users.password-hashes', { data: () => Promise.resolve(data) })).toMatchObject({ status: 'warn', message: expect.stringContaining('3 of 8') });
  });

  it('reads argon2id parameters in any order, and nothing from other hashes', () => {
    expect(argon2idParameters('$argon2id$v=19$m=19456,p=1,t=2')).toEqual({ memoryKib: 19_456, timeCost: 2, parallelism: 1 });
    expect(argon2idParameters('$argon2id$v=19$t=3,m=65536,p=4')).toEqual({ memoryKib: 65_536, timeCost: 3, parallelism: 4 });
    expect(argon2idParameters('$argon2i$v=19$m=19456,t=2,p=1')).toBeUndefined();
    expect(argon2idParameters(null)).toBeUndefined();
  });
});
