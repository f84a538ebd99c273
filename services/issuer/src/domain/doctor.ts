import { z } from 'zod';

import type { Config } from '../config.js';
import { OWASP_ARGON2 } from './passwords.js';
import { isLoopbackHost } from './validation.js';

/**
 * `sigil doctor`: a self-audit of a deployment against RFC 9700 and OWASP ASVS 5.0. Every
 * check is a pure function of facts gathered elsewhere (the configuration, the key store, the
 * key files' modes, and what the database holds); nothing here reads a file or the database.
 */

export type CheckStatus = 'pass' | 'warn' | 'fail';

/** One finding: `message` is one line and never carries a secret value. */
export interface Check {
  readonly id: string;
  readonly status: CheckStatus;
  readonly message: string;
  /** Where the rule comes from: an RFC section, an ASVS chapter or requirement, or the README. */
  readonly section: string;
}

/** The report `sigil doctor --json` prints; `ok` is false when any check fails. */
export interface DoctorReport {
  readonly ok: boolean;
  readonly checks: readonly Check[];
}

/** A signing key as the doctor sees it: its state and dates, never its material. */
export interface DoctorKey {
  readonly kid: string;
  readonly state: 'next' | 'current' | 'retired';
  readonly createdAt: string;
  /** When it began to sign; undefined: the store does not record it (then `createdAt` counts). */
  readonly activatedAt: string | undefined;
  readonly retiredAt: string | undefined;
}

/** Permission bits (`mode & 0o777`) of KEYS_DIR and of each key file in it. */
export interface KeyFileModes {
  /** undefined: KEYS_DIR does not exist (yet). */
  readonly directory: number | undefined;
  readonly files: readonly { readonly name: string; readonly mode: number }[];
}

/** What the deployment's database holds, as the `doctor.facts` admin command reports it: no secret, no hash. */
export const dataFactsSchema = z.object({
  reachable: z.boolean(),
  latencyMs: z.number(),
  notificationsLive: z.boolean(),
  /** PostgreSQL's `max_connections` and `superuser_reserved_connections`. */
  connections: z.object({ max: z.number().int(), reserved: z.number().int() }),
  clients: z.array(
    z.object({
      id: z.string(),
      grants: z.array(z.string()),
      redirectUris: z.array(z.string()),
      resources: z.array(z.string()),
      accessTokenTtl: z.number().nullable(),
    }),
  ),
  /** Keys neither revoked nor expired. */
  apiKeys: z.array(z.object({ id: z.string(), resources: z.number().int(), expiresAt: z.string().nullable() })),
  /** Users grouped by the parameter prefix of their hash (`$argon2id$v=19$m=…,t=…,p=…`, never the salt or digest). */
  passwordHashes: z.array(z.object({ parameters: z.string().nullable(), users: z.number().int() })),
});

export type DataFacts = z.infer<typeof dataFactsSchema>;

/** The configuration values the checks judge. */
export type DoctorConfig = Pick<
  Config,
  | 'issuer'
  | 'production'
  | 'databaseUrl'
  | 'cookieKeys'
  | 'keyStore'
  | 'keysEncryptionKeys'
  | 'keyRotationInterval'
  | 'keyPublishLead'
  | 'corsOrigins'
  | 'accessTokenTtl'
  | 'webConcurrency'
  | 'databasePoolMax'
  | 'argon2'
>;

/** Where the doctor gets its facts; each may throw, which becomes a failed check, not a crash. */
export interface DoctorSources {
  readonly config: DoctorConfig;
  readonly now: Date;
  readonly keys: () => Promise<readonly DoctorKey[]>;
  /** Only asked for with the file key store. */
  readonly keyFileModes: () => Promise<KeyFileModes>;
  readonly data: () => Promise<DataFacts>;
}

/** Every check id, in report order. */
export const CHECK_IDS = [
  'issuer.https',
  'cookies.keys',
  'cors.origins',
  'tokens.access-ttl',
  'passwords.argon2',
  'keys.store',
  'keys.age',
  'keys.next-lead',
  'keys.file-modes',
  'keys.encryption-key',
  'database.reachable',
  'database.notifications',
  'database.connections',
  'clients.redirect-uris',
  'clients.password-grant',
  'clients.resources',
  'clients.audience-scopes',
  'api-keys.resources',
  'api-keys.expiry',
  'users.password-hashes',
] as const;

export type CheckId = (typeof CHECK_IDS)[number];

const SECTIONS: Record<CheckId, string> = {
  'issuer.https': 'RFC 9700 §2.6; ASVS 5.0 V12',
  'cookies.keys': 'ASVS 5.0 V7',
  'cors.origins': 'RFC 9700 §2.6',
  'tokens.access-ttl': 'RFC 9700',
  'passwords.argon2': 'ASVS 5.0 V11; OWASP Password Storage Cheat Sheet',
  'keys.store': 'ASVS 5.0 V11',
  'keys.age': 'ASVS 5.0 V11',
  'keys.next-lead': 'README: Keys',
  'keys.file-modes': 'ASVS 5.0 V13',
  'keys.encryption-key': 'ASVS 5.0 V11',
  'database.reachable': 'README: Database outages',
  'database.notifications': 'README: Several replicas behind a load balancer',
  'database.connections': 'README: Several replicas behind a load balancer',
  'clients.redirect-uris': 'RFC 9700 §2.6; ASVS 5.0 10.4.1',
  'clients.password-grant': 'RFC 9700 §2.4; ASVS 5.0 10.4.4',
  'clients.resources': 'RFC 9700 §2.3; RFC 8707 §2',
  'clients.audience-scopes': 'RFC 9700 §2.3; RFC 9068 §2.2.3',
  'api-keys.resources': 'RFC 9700 §2.3',
  'api-keys.expiry': 'ASVS 5.0 V13',
  'users.password-hashes': 'ASVS 5.0 V11; OWASP Password Storage Cheat Sheet',
};

function check(id: CheckId, status: CheckStatus, message: string): Check {
  return { id, status, message, section: SECTIONS[id] };
}

const HOUR = 3600;
const MIN_COOKIE_KEY_LENGTH = 32;
/** Fewer distinct characters than this in a cookie key: typed by hand, not generated. */
const MIN_COOKIE_KEY_DISTINCT = 10;
/** Fewer distinct byte values than this in 32 bytes: not random (32 random bytes have about 30). */
const MIN_ENCRYPTION_KEY_DISTINCT = 16;
/** Above this share of the server's connections, another client (a CLI run, a migration) may find none. */
const CONNECTION_HEADROOM = 0.8;
/** Grants that obtain tokens, so that a client holding one needs a resource (an audience). */
const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const TOKEN_GRANTS = new Set(['client_credentials', 'password', 'authorization_code', TOKEN_EXCHANGE_GRANT]);

/** "3 (a, b, c, …)": a count and the first few ids. */
function some(ids: readonly string[]): string {
  const shown = ids.slice(0, 3).join(', ');
  return `${ids.length} (${shown}${ids.length > 3 ? ', …' : ''})`;
}

/** "2 d 3 h" style: the largest two units of a duration in seconds. */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const units: [string, number][] = [['d', 86_400], ['h', 3600], ['min', 60], ['s', 1]];
  const parts: string[] = [];
  let rest = s;
  for (const [name, size] of units) {
    if (parts.length === 2) break;
    const count = Math.floor(rest / size);
    if (count > 0 || (parts.length === 0 && size === 1)) parts.push(`${count} ${name}`);
    if (count > 0) rest -= count * size;
  }
  return parts.join(' ');
}

function isHttpNonLoopback(value: string): boolean {
  const url = URL.parse(value);
  return url !== null && url.protocol === 'http:' && !isLoopbackHost(url.hostname);
}

function issuerCheck({ issuer, production }: DoctorConfig): Check {
  if (URL.parse(issuer)?.protocol === 'https:') return check('issuer.https', 'pass', `ISSUER is https (${issuer})`);
  if (production) return check('issuer.https', 'fail', `ISSUER ${issuer} is http while NODE_ENV=production: tokens, codes and passwords cross the network in the clear`);
  return check('issuer.https', 'warn', `ISSUER ${issuer} is http: acceptable for development only (NODE_ENV is not production)`);
}

function cookieKeysCheck({ cookieKeys, production }: DoctorConfig): Check {
  if (cookieKeys === undefined) {
    return production
      ? check('cookies.keys', 'fail', 'COOKIE_KEYS is unset while NODE_ENV=production: the issuer refuses to start; set it, the same on every replica')
      : check('cookies.keys', 'warn', 'COOKIE_KEYS is unset: one key is generated and kept in DATA_DIR/cookie-keys.json, which a second replica would not share');
  }
  const short = cookieKeys.map((key, i) => ({ key, n: i + 1 })).filter(({ key }) => key.length < MIN_COOKIE_KEY_LENGTH);
  if (short.length > 0) return check('cookies.keys', 'fail', `COOKIE_KEYS entry ${short.map(({ n }) => n).join(', ')} is shorter than ${MIN_COOKIE_KEY_LENGTH} characters`);
  const guessable = cookieKeys.map((key, i) => ({ key, n: i + 1 })).filter(({ key }) => new Set(key).size < MIN_COOKIE_KEY_DISTINCT);
  if (guessable.length > 0) {
    return check('cookies.keys', 'fail', `COOKIE_KEYS entry ${guessable.map(({ n }) => n).join(', ')} has fewer than ${MIN_COOKIE_KEY_DISTINCT} distinct characters: not a random key`);
  }
  return check('cookies.keys', 'pass', `COOKIE_KEYS has ${cookieKeys.length} key(s) of at least ${MIN_COOKIE_KEY_LENGTH} characters`);
}

function corsCheck({ corsOrigins, production }: DoctorConfig): Check {
  const http = corsOrigins.filter((origin) => !origin.startsWith('https:'));
  if (http.length === 0) {
    return check('cors.origins', 'pass', corsOrigins.length === 0 ? 'CORS_ORIGINS is empty: no cross-origin access' : `all ${corsOrigins.length} CORS origin(s) are https`);
  }
  const remote = http.filter(isHttpNonLoopback);
  if (remote.length > 0 || production) {
    return check('cors.origins', 'fail', `CORS_ORIGINS allows ${http.length} http origin(s) (${http.slice(0, 3).join(', ')}): a page served in the clear may call the token endpoint`);
  }
  return check('cors.origins', 'warn', `CORS_ORIGINS allows ${http.length} http loopback origin(s): development only`);
}

function accessTtlCheck({ accessTokenTtl }: DoctorConfig, data: DataFacts | undefined): Check {
  const longClients = (data?.clients ?? []).filter((client) => client.accessTokenTtl !== null && client.accessTokenTtl > HOUR).map((client) => client.id);
  if (accessTokenTtl > HOUR) {
    return check('tokens.access-ttl', 'warn', `ACCESS_TOKEN_TTL is ${duration(accessTokenTtl)}, over an hour: a stolen access token works that long, and revocation reaches only resource servers that poll the feed`);
  }
  if (longClients.length > 0) {
    return check('tokens.access-ttl', 'warn', `clients with an access-token lifetime over an hour: ${some(longClients)}`);
  }
  return check('tokens.access-ttl', 'pass', `ACCESS_TOKEN_TTL is ${duration(accessTokenTtl)}${data === undefined ? '' : '; no client overrides it beyond an hour'}`);
}

function argon2ConfigCheck({ argon2 }: DoctorConfig): Check {
  const weak = argon2.memoryKib < OWASP_ARGON2.memoryKib || argon2.timeCost < OWASP_ARGON2.timeCost || argon2.parallelism < OWASP_ARGON2.parallelism;
  const shown = `m=${argon2.memoryKib},t=${argon2.timeCost},p=${argon2.parallelism}`;
  return weak
    ? check('passwords.argon2', 'fail', `argon2id parameters ${shown} are below OWASP's minimum (m=${OWASP_ARGON2.memoryKib},t=${OWASP_ARGON2.timeCost},p=${OWASP_ARGON2.parallelism})`)
    : check('passwords.argon2', 'pass', `new password hashes use argon2id ${shown}, at least OWASP's minimum`);
}

function current(keys: readonly DoctorKey[]): DoctorKey | undefined {
  const signing = keys.filter((key) => key.state === 'current');
  return signing.length === 1 ? signing[0] : undefined;
}

function keyStoreCheck(keys: readonly DoctorKey[] | Error): Check {
  if (keys instanceof Error) return check('keys.store', 'fail', `the signing keys cannot be read: ${oneLine(keys.message)}`);
  if (keys.length === 0) return check('keys.store', 'warn', 'no signing key yet: the issuer creates one when it starts');
  const signing = keys.filter((key) => key.state === 'current').length;
  if (signing !== 1) return check('keys.store', 'fail', `${signing} keys are in state "current" (exactly one must be): the issuer refuses to start`);
  const counts = (['current', 'next', 'retired'] as const).map((state) => `${keys.filter((key) => key.state === state).length} ${state}`);
  return check('keys.store', 'pass', `signing keys: ${counts.join(', ')}`);
}

function ageOf(key: DoctorKey, now: Date): number {
  return (now.getTime() - Date.parse(key.activatedAt ?? key.createdAt)) / 1000;
}

function keyAgeCheck({ keyRotationInterval, keyPublishLead }: DoctorConfig, keys: readonly DoctorKey[] | Error, now: Date): Check {
  const signing = keys instanceof Error ? undefined : current(keys);
  const age = signing === undefined ? undefined : ageOf(signing, now);
  const aged = age === undefined ? '' : `the current key has signed for ${duration(age)}`;
  if (keyRotationInterval === undefined) {
    return check('keys.age', 'warn', `KEY_ROTATION_INTERVAL is unset: rotation only by command (sigil keys rotate)${aged === '' ? '' : `; ${aged}`}`);
  }
  if (age === undefined) return check('keys.age', 'warn', `no current key to judge against KEY_ROTATION_INTERVAL (${duration(keyRotationInterval)})`);
  const over = age - keyRotationInterval;
  if (over > keyPublishLead) {
    return check('keys.age', 'fail', `${aged}, past KEY_ROTATION_INTERVAL (${duration(keyRotationInterval)}) by more than KEY_PUBLISH_LEAD: automatic rotation is not happening`);
  }
  if (over > 0) return check('keys.age', 'warn', `${aged}, past KEY_ROTATION_INTERVAL (${duration(keyRotationInterval)}): rotation is due`);
  return check('keys.age', 'pass', `${aged}, within KEY_ROTATION_INTERVAL (${duration(keyRotationInterval)})`);
}

function nextLeadCheck({ keyPublishLead }: DoctorConfig, keys: readonly DoctorKey[] | Error, now: Date): Check {
  if (keys instanceof Error) return check('keys.next-lead', 'warn', 'not checked: the signing keys cannot be read');
  const next = keys.filter((key) => key.state === 'next');
  if (next.length === 0) return check('keys.next-lead', 'pass', 'no next key is published');
  const young = next.filter((key) => (now.getTime() - Date.parse(key.createdAt)) / 1000 < keyPublishLead);
  if (young.length > 0) {
    const left = Math.max(...young.map((key) => keyPublishLead - (now.getTime() - Date.parse(key.createdAt)) / 1000));
    return check('keys.next-lead', 'warn', `the next key has been published for less than KEY_PUBLISH_LEAD (${duration(keyPublishLead)}): it may sign in ${duration(left)} (sigil keys rotate refuses it until then without --force)`);
  }
  return check('keys.next-lead', 'pass', `the next key has been published for at least KEY_PUBLISH_LEAD (${duration(keyPublishLead)}): it may be promoted`);
}

function fileModesCheck(modes: KeyFileModes | Error | undefined): Check {
  if (modes === undefined) return check('keys.file-modes', 'pass', 'not applicable: KEY_STORE=database keeps no key files');
  if (modes instanceof Error) return check('keys.file-modes', 'fail', `KEYS_DIR cannot be inspected: ${oneLine(modes.message)}`);
  if (modes.directory === undefined) return check('keys.file-modes', 'pass', 'KEYS_DIR does not exist yet: the issuer creates it with mode 0700');
  const problems: string[] = [];
  if ((modes.directory & 0o077) !== 0) problems.push(`KEYS_DIR has mode ${octal(modes.directory)} (group or others may enter it; want 0700)`);
  const open = modes.files.filter((file) => file.mode !== 0o600);
  if (open.length > 0) problems.push(`${some(open.map((file) => `${file.name} ${octal(file.mode)}`))} key file(s) not 0600`);
  if (problems.length > 0) return check('keys.file-modes', 'fail', problems.join('; '));
  return check('keys.file-modes', 'pass', `KEYS_DIR is private and its ${modes.files.length} key file(s) are 0600`);
}

function encryptionKeyCheck({ keyStore, keysEncryptionKeys }: DoctorConfig): Check {
  if (keysEncryptionKeys.length === 0) {
    return keyStore === 'database'
      ? check('keys.encryption-key', 'fail', 'KEY_STORE=database without KEYS_ENCRYPTION_KEY: the private keys cannot be encrypted')
      : check('keys.encryption-key', 'pass', 'not applicable: KEY_STORE=files and no KEYS_ENCRYPTION_KEY');
  }
  const problems: string[] = [];
  keysEncryptionKeys.forEach((key, i) => {
    const distinct = new Set(key).size;
    if (key.length !== 32) problems.push(`entry ${i + 1} is ${key.length * 8} bits, not 256`);
    else if (distinct < MIN_ENCRYPTION_KEY_DISTINCT) problems.push(`entry ${i + 1} has only ${distinct} distinct byte values: not random`);
  });
  const seen = new Set(keysEncryptionKeys.map((key) => key.toString('hex')));
  if (seen.size < keysEncryptionKeys.length) problems.push('an entry is repeated');
  if (problems.length > 0) return check('keys.encryption-key', 'fail', `KEYS_ENCRYPTION_KEY: ${problems.join('; ')}`);
  const use = keyStore === 'database' ? '' : ' (unused while KEY_STORE=files)';
  return check('keys.encryption-key', 'pass', `KEYS_ENCRYPTION_KEY has ${keysEncryptionKeys.length} 256-bit key(s) that look random${use}`);
}

/** The data checks, when the database could not be asked: each says it was not checked. */
function unchecked(ids: readonly CheckId[]): Check[] {
  return ids.map((id) => check(id, 'warn', 'not checked: the database is unreachable'));
}

function connectionsCheck({ databaseUrl, webConcurrency, databasePoolMax }: DoctorConfig, data: DataFacts): Check {
  if (databaseUrl === undefined) return check('database.connections', 'pass', 'not applicable: the embedded database has one owner process');
  const budget = webConcurrency * (databasePoolMax + 1);
  const available = data.connections.max - data.connections.reserved;
  const sum = `WEB_CONCURRENCY ${webConcurrency} × (DATABASE_POOL_MAX ${databasePoolMax} + 1) = ${budget}`;
  const server = `${available} of max_connections ${data.connections.max} open to non-superusers`;
  if (budget > available) return check('database.connections', 'fail', `${sum} exceeds ${server}: under load, connections are refused`);
  if (budget > available * CONNECTION_HEADROOM) {
    return check('database.connections', 'warn', `${sum} is over ${CONNECTION_HEADROOM * 100}% of ${server}: little is left for the CLI, migrations and other replicas`);
  }
  return check('database.connections', 'pass', `${sum} fits in ${server} (per replica host)`);
}

/** A resource service's own client: no grant, or the token exchange grant alone. Its scopes declare its audience's. */
const declaresItsAudience = (client: DataFacts['clients'][number]) => client.grants.every((grant) => grant === TOKEN_EXCHANGE_GRANT);

/**
 * The audiences tokens are issued for that no resource service's own client declares: a token
 * for one carries the client's scopes that no declared audience claims, which may be another
 * service's (least privilege holds only for declared audiences). The admin audience's scopes are
 * the issuer's own.
 */
function audienceScopesCheck({ issuer }: DoctorConfig, data: DataFacts): Check {
  const declared = new Set(data.clients.filter(declaresItsAudience).flatMap((client) => client.resources));
  const admin = `${issuer.replace(/\/$/u, '')}/admin`;
  const undeclared = [...new Set(data.clients.filter((client) => !declaresItsAudience(client)).flatMap((client) => client.resources))].filter((resource) => !declared.has(resource) && resource !== admin);
  return undeclared.length > 0
    ? check('clients.audience-scopes', 'warn', `audiences no resource service client declares (sigil clients create --resource URI --scope "…", no --grant), so their tokens may carry other audiences' undeclared scopes: ${some(undeclared)}`)
    : check('clients.audience-scopes', 'pass', "every audience tokens are issued for has its resource service's own client declaring its scopes");
}

function clientChecks(data: DataFacts): Check[] {
  const insecure = data.clients.filter((client) => client.redirectUris.some(isHttpNonLoopback)).map((client) => client.id);
  const password = data.clients.filter((client) => client.grants.includes('password')).map((client) => client.id);
  const lost = data.clients.filter((client) => client.resources.length === 0 && client.grants.some((grant) => TOKEN_GRANTS.has(grant))).map((client) => client.id);
  return [
    insecure.length > 0
      ? check('clients.redirect-uris', 'fail', `clients with an http redirect URI on a non-loopback host: ${some(insecure)}`)
      : check('clients.redirect-uris', 'pass', 'every redirect URI is https, http on loopback, or a private-use scheme'),
    password.length > 0
      ? check('clients.password-grant', 'warn', `clients allowed the password grant, which RFC 9700 says MUST NOT be used: ${some(password)}`)
      : check('clients.password-grant', 'pass', 'no client is allowed the password grant'),
    lost.length > 0
      ? check('clients.resources', 'warn', `clients with a grant but no resource (their token requests answer invalid_target): ${some(lost)}`)
      : check('clients.resources', 'pass', 'every client with a grant has at least one resource'),
  ];
}

function apiKeyChecks(data: DataFacts): Check[] {
  const bare = data.apiKeys.filter((key) => key.resources === 0).map((key) => key.id);
  const forever = data.apiKeys.filter((key) => key.expiresAt === null).map((key) => key.id);
  return [
    bare.length > 0
      ? check('api-keys.resources', 'fail', `API keys with no resources, refused everywhere until sigil api-keys update: ${some(bare)}`)
      : check('api-keys.resources', 'pass', 'every active API key names its resources'),
    forever.length > 0
      ? check('api-keys.expiry', 'warn', `active API keys that never expire: ${some(forever)}`)
      : check('api-keys.expiry', 'pass', 'every active API key expires'),
  ];
}

/**
 * argon2id's parameters from a hash prefix such as `$argon2id$v=19$m=19456,p=1,t=2` (in any
 * order); undefined for anything else.
 */
export function argon2idParameters(prefix: string | null): { memoryKib: number; timeCost: number; parallelism: number } | undefined {
  const match = /^\$argon2id\$v=\d+\$([a-z]=\d+(?:,[a-z]=\d+)*)$/u.exec(prefix ?? '');
  if (match === null) return undefined;
  const values = new Map((match[1] ?? '').split(',').map((pair) => [pair.slice(0, 1), Number(pair.slice(2))] as const));
  const [memoryKib, timeCost, parallelism] = [values.get('m'), values.get('t'), values.get('p')];
  if (memoryKib === undefined || timeCost === undefined || parallelism === undefined) return undefined;
  return { memoryKib, timeCost, parallelism };
}

function passwordHashesCheck(data: DataFacts): Check {
  let weak = 0;
  let total = 0;
  for (const group of data.passwordHashes) {
    total += group.users;
    const parameters = argon2idParameters(group.parameters);
    const below = parameters === undefined || parameters.memoryKib < OWASP_ARGON2.memoryKib || parameters.timeCost < OWASP_ARGON2.timeCost || parameters.parallelism < OWASP_ARGON2.parallelism;
    if (below) weak += group.users;
  }
  if (weak > 0) {
    return check('users.password-hashes', 'warn', `${weak} of ${total} user(s) have a password hash that is not argon2id at OWASP's minimum; each is rehashed at that user's next successful sign-in`);
  }
  if (total === 0) return check('users.password-hashes', 'pass', 'no users yet');
  return check('users.password-hashes', 'pass', `all ${total} user password hash(es) are argon2id at OWASP's minimum or above`);
}

function oneLine(text: string): string {
  return text.replace(/\s+/gu, ' ').trim();
}

function octal(mode: number): string {
  return `0${(mode & 0o777).toString(8).padStart(3, '0')}`;
}

async function settle<T>(source: () => Promise<T>): Promise<T | Error> {
  try {
    return await source();
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
}

const DATA_CHECKS: readonly CheckId[] = [
  'database.notifications',
  'database.connections',
  'clients.redirect-uris',
  'clients.password-grant',
  'clients.resources',
  'clients.audience-scopes',
  'api-keys.resources',
  'api-keys.expiry',
  'users.password-hashes',
];

/**
 * Runs every check. A source that throws becomes a failed check naming its error (the keys,
 * the key files, the database), and the checks that needed it say they were not checked.
 */
export async function runDoctor(sources: DoctorSources): Promise<DoctorReport> {
  const { config, now } = sources;
  const [keys, modes, data] = await Promise.all([
    settle(sources.keys),
    config.keyStore === 'files' ? settle(sources.keyFileModes) : Promise.resolve(undefined),
    settle(sources.data),
  ]);
  const facts = data instanceof Error ? undefined : data;
  const checks: Check[] = [
    issuerCheck(config),
    cookieKeysCheck(config),
    corsCheck(config),
    accessTtlCheck(config, facts),
    argon2ConfigCheck(config),
    keyStoreCheck(keys),
    keyAgeCheck(config, keys, now),
    nextLeadCheck(config, keys, now),
    fileModesCheck(modes),
    encryptionKeyCheck(config),
  ];
  if (facts === undefined || !facts.reachable) {
    const reason = data instanceof Error ? oneLine(data.message) : 'it did not answer SELECT 1 in time';
    checks.push(check('database.reachable', 'fail', `the database is unreachable: ${reason}`), ...unchecked(DATA_CHECKS));
  } else {
    checks.push(
      check('database.reachable', 'pass', `the database answered SELECT 1 in ${Math.round(facts.latencyMs)} ms`),
      facts.notificationsLive
        ? check('database.notifications', 'pass', 'change notifications (LISTEN/NOTIFY) arrive')
        : check('database.notifications', 'warn', 'change notifications do not arrive (a pooler in transaction mode drops LISTEN): every request reads clients from the database'),
      connectionsCheck(config, facts),
      ...clientChecks(facts),
      audienceScopesCheck(config, facts),
      ...apiKeyChecks(facts),
      passwordHashesCheck(facts),
    );
  }
  const order = new Map<string, number>(CHECK_IDS.map((id, i) => [id, i]));
  checks.sort((a, b) => (order.get(a.id) ?? 0) - (order.get(b.id) ?? 0));
  return { ok: checks.every((item) => item.status !== 'fail'), checks };
}
