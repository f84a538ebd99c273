// @ts-check
/**
 * The bench's set-up and tear-down. A temp directory (keys, data, logs), a fresh PostgreSQL
 * database (none with --embedded), the real issuer, its clients, API key and user (created with
 * the `sigil` CLI, the admin API's client among them), the many-clients workload's clients (over
 * the issuer's HTTP admin API, not one CLI process each), orders-api and the baseline servers,
 * all as child processes on free 127.0.0.1 ports. Whatever happens (success, failure, Ctrl-C,
 * the watchdog), every child is stopped, the temp directory removed and the database dropped.
 *
 * BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres) names a database the
 * bench connects to in order to create `sigil_bench_<time>` next to it.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import pg from 'pg';

import { ADMIN_SCOPE, adminAudience, adminToken, machineClientBody } from './lib/admin.js';
import { byCommand, processGroup, readCpu } from './lib/cpu.js';
import { asRecord, once } from './lib/http.js';
import { fail, progress } from './lib/log.js';
import { freePort, runNode, sleep, startChild, stopChild, waitForOk } from './lib/processes.js';
import { createClientsOverHttp } from './lib/provision.js';

/** bench/ */
export const here = path.dirname(fileURLToPath(import.meta.url));
/** the repository */
export const root = path.resolve(here, '..');
/** the issuer's build output (the command-path baseline loads its admin commands from it) */
export const ISSUER_DIST = path.join(root, 'services/issuer/dist');
const ISSUER_MAIN = path.join(ISSUER_DIST, 'main.js');
const ORDERS_MAIN = path.join(root, 'services/orders-api/dist/main.js');
/** How often the bench's orders-api reads the revocation feed, in ms (the default is 10 s). */
export const ORDERS_FEED_POLL_MS = 1000;
const SIGIL_CLI = path.join(root, 'services/issuer/bin/sigil.js');
export const AUDIENCE = 'http://localhost:4001';
export const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
/** The issuer's defaults (config.ts); the bench does not override them. */
export const ARGON2 = { memoryKib: 19_456, timeCost: 2, parallelism: 1 };
/** `POST /admin/v1/clients` requests in flight while provisioning the many-clients workload. */
const PROVISION_IN_FLIGHT = 16;

/** @typedef {import('./lib/processes.js').Child} Child */
/** @typedef {import('./workloads/measure.js').Options} Options */

// ---------------------------------------------------------------------------------------------
// the session: every resource registers how it is released; released once, newest first

/**
 * @typedef {object} Session
 * @property {Child[]} children every child started, in start order
 * @property {(name: string, run: () => Promise<void> | void) => void} onCleanUp registers how a resource is released
 * @property {() => Promise<void>} cleanUp releases every resource, newest first; a later call waits for the same clean-up
 * @property {() => void} disarm stops the watchdog
 */

/**
 * Arms the clean-up for Ctrl-C (SIGINT), SIGTERM and a watchdog bounding the whole run (5
 * minutes with --quick, 25 without, plus `extraMs` for a longer --warmup): whatever happens,
 * everything is stopped by then.
 * @param {boolean} quick
 * @param {number} [extraMs]
 * @returns {Session}
 */
export function openSession(quick, extraMs = 0) {
  // a full run takes about 14 minutes, 5 of them the 100,000-client row (workloads/client-cache.js)
  const watchdogMs = (quick ? 5 : 25) * 60_000 + extraMs;
  /** @type {{ name: string, run: () => Promise<void> | void }[]} */
  const cleanups = [];
  const releaseAll = async () => {
    for (const { name, run } of cleanups.reverse()) {
      try {
        await run();
      } catch (error) {
        process.stderr.write(`bench: clean-up of ${name} failed: ${error instanceof Error ? error.message : String(error)}\n`);
      }
    }
  };
  /** @type {Promise<void> | null} */
  let releasing = null;
  // every caller waits for the one clean-up: the run's own end must not exit while a signal's is under way
  const cleanUp = () => (releasing ??= releaseAll());
  // `on`, not `once`: signal-exit (which the issuer's storage/db.js brings in through proper-lockfile)
  // raises the signal again, killing the process mid-clean-up, when its listeners are the only ones left
  for (const signal of /** @type {const} */ (['SIGINT', 'SIGTERM'])) {
    process.on(signal, () => {
      progress(`${signal}: stopping`);
      void cleanUp().then(() => process.exit(130));
    });
  }
  const watchdog = setTimeout(() => {
    progress(`the run exceeded ${Math.round(watchdogMs / 60_000)} minutes; stopping`);
    void cleanUp().then(() => process.exit(1));
  }, watchdogMs);
  return { children: [], onCleanUp: (name, run) => void cleanups.push({ name, run }), cleanUp, disarm: () => clearTimeout(watchdog) };
}

// ---------------------------------------------------------------------------------------------
// the stack

/**
 * @typedef {object} Credentials what the CLI created
 * @property {{ id: string, secret: string }} machine client credentials, scope orders:read, role admin
 * @property {{ id: string, secret: string }} guard orders-api's own client, which authenticates its API-key introspection calls (RFC 7662)
 * @property {{ id: string, secret: string }} password a first-party client with the password grant
 * @property {{ id: string, secret: string }} refresh a first-party client with the password and refresh grants
 * @property {{ id: string, secret: string }} admin the admin API's client: client credentials, scope sigil:admin, resource `<ISSUER>/admin`
 * @property {string} apiKey
 * @property {string} username an admin user
 * @property {string} userPassword
 */

/**
 * @typedef {object} Base what starting a server needs
 * @property {Session} session
 * @property {Options} options
 * @property {string} logDir
 * @property {string} profileDir where --profile's CPU profiles go
 * @property {Record<string, string>} issuerEnv
 * @property {Map<string, Child>} servers each server by its origin: a workload's CPU per request is read off the server it targets
 */

/**
 * @typedef {object} Started
 * @property {Date} startedAt
 * @property {number | null} loadBefore the 1-minute load average before the run
 * @property {string | null} postgresVersion null with --embedded
 * @property {{ issuer: string, orders: string, minimal: string, unguarded: string, minimalOrders: string, engine: string, ordersNoFeed: string }} urls each server's origin
 *   (`ordersNoFeed`: orders-api without its own client, so without the revocation feed)
 * @property {{ discovery: string, token: string, jwks: string }} endpoints the issuer's, from its discovery document
 * @property {Credentials} credentials
 * @property {{ id: string, secret: string }[]} manyClients the many-clients workload's clients, in creation order (none when neither of its rows runs)
 * @property {{ count: number, ms: number, clientsPerSec: number, path: string, inFlight: number } | null} provisioning how those clients were created, and how fast
 */

/** @typedef {Base & Started} Stack everything the workloads run against */

/**
 * Starts everything, in this order: database, issuer, the CLI's provisioning, the issuer's
 * discovery, the many clients, orders-api and the baseline servers.
 * @param {Session} session
 * @param {Options} options
 * @returns {Promise<Stack>}
 */
export async function setUp(session, options) {
  if (!existsSync(ISSUER_MAIN) || !existsSync(ORDERS_MAIN)) fail('services are not built: run `npm run build` first');
  const startedAt = new Date();
  const loadBefore = os.loadavg()[0] ?? null;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'sigil-bench-'));
  session.onCleanUp(`temp dir ${tmp}`, () => rmSync(tmp, { recursive: true, force: true }));
  const logDir = path.join(tmp, 'logs');
  mkdirSync(logDir);
  const database = options.embedded ? { url: '', version: null } : await createDatabase(session);

  const [issuerPort, ordersPort, minimalPort, unguardedPort, minimalOrdersPort, enginePort, ordersNoFeedPort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort(), freePort(), freePort()]);
  const origin = (/** @type {number | undefined} */ port) => `http://127.0.0.1:${port}`;
  const urls = { issuer: origin(issuerPort), orders: origin(ordersPort), minimal: origin(minimalPort), unguarded: origin(unguardedPort), minimalOrders: origin(minimalOrdersPort), engine: origin(enginePort), ordersNoFeed: origin(ordersNoFeedPort) };
  session.onCleanUp('child processes', async () => void (await Promise.all(session.children.map((child) => stopChild(child)))));
  const profileDir = path.join(here, 'results', 'profiles', startedAt.toISOString().replace(/[:.]/gu, '-'));
  /** @type {Base} */
  const base = { session, options, logDir, profileDir, issuerEnv: issuerEnvironment(tmp, database.url, urls.issuer), servers: new Map() };
  await waitForIssuer(urls.issuer, launchIssuer(base, 'issuer', urls.issuer, String(issuerPort), options.workers, profileDir));
  progress(`issuer up on ${urls.issuer} (${options.workers} worker${options.workers === 1 ? '' : 's'}, ${options.embedded ? 'PGlite' : 'PostgreSQL'})`);
  const credentials = await provisionWithCli({ ...base.issuerEnv, PORT: String(issuerPort) });
  progress('clients, API key and user provisioned');
  const [token = '', jwks = ''] = await discover(urls.issuer, ['token_endpoint', 'jwks_uri'], 'discovery');
  const endpoints = { discovery: `${urls.issuer}/.well-known/openid-configuration`, token, jwks };
  const many = await provisionManyClients(base, urls.issuer, token, credentials.admin);
  await startOthers(base, urls, credentials, { orders: ordersPort, minimal: minimalPort, unguarded: unguardedPort, minimalOrders: minimalOrdersPort, engine: enginePort, ordersNoFeed: ordersNoFeedPort });
  return { ...base, startedAt, loadBefore, postgresVersion: database.version, urls, endpoints, credentials, manyClients: many.clients, provisioning: many.provisioning };
}

/**
 * The issuer's environment. Blank values mean "default" to the issuer: a variable in the
 * caller's environment must not change the run.
 * @param {string} tmp
 * @param {string} databaseUrl blank: the embedded database in DATA_DIR
 * @param {string} issuerUrl
 * @returns {Record<string, string>}
 */
function issuerEnvironment(tmp, databaseUrl, issuerUrl) {
  return {
    DATABASE_URL: databaseUrl,
    DATA_DIR: path.join(tmp, 'data'),
    KEYS_DIR: path.join(tmp, 'keys'),
    KEY_STORE: '',
    KEYS_ENCRYPTION_KEY: '',
    LOG_LEVEL: 'warn',
    ISSUER: issuerUrl,
    NODE_ENV: '',
    COOKIE_KEYS: '',
    CORS_ORIGINS: '',
    TRUST_PROXY: '',
    ACCESS_TOKEN_TTL: '',
    REFRESH_TOKEN_TTL: '',
    ARGON2_MEMORY_KIB: '',
    ARGON2_TIME_COST: '',
    ARGON2_PARALLELISM: '',
  };
}

/**
 * A PostgreSQL client on `url` (5 s to connect), for the duration of `use`.
 * @template T
 * @param {string} url
 * @param {(client: pg.Client) => Promise<T>} use
 * @returns {Promise<T>}
 */
export async function withPostgres(url, use) {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await client.connect().catch((/** @type {unknown} */ error) => {
    throw new Error(`cannot connect to BENCH_DATABASE_URL (${error instanceof Error ? error.message : String(error)}); set it, or use --embedded`);
  });
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

/**
 * Creates `sigil_bench_<time>` beside BENCH_DATABASE_URL's database, dropped at clean-up.
 * @param {Session} session
 * @returns {Promise<{ url: string, version: string }>}
 */
async function createDatabase(session) {
  const adminUrl = process.env['BENCH_DATABASE_URL'] ?? DEFAULT_DATABASE_URL;
  const name = `sigil_bench_${Date.now()}`;
  const version = await withPostgres(adminUrl, async (admin) => {
    const shown = String(asRecord((await admin.query('SHOW server_version')).rows[0])['server_version'] ?? '');
    await admin.query(`CREATE DATABASE "${name}"`);
    return shown;
  });
  session.onCleanUp(`database ${name}`, () => withPostgres(adminUrl, async (dropper) => void (await dropper.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`))));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  progress(`database ${name} created`);
  return { url: url.toString(), version };
}

/**
 * --profile: node's options for a process that writes a V8 CPU profile to `dir` when it stops
 * (cluster workers inherit them); none without --profile.
 * @param {boolean} profile
 * @param {string} dir
 */
function profiling(profile, dir) {
  if (!profile) return [];
  mkdirSync(dir, { recursive: true });
  return ['--cpu-prof', `--cpu-prof-dir=${dir}`];
}

/**
 * Starts an issuer (`name`, on `url`) on the stack's database, keys and data directory.
 * @param {Base} base
 * @param {string} name
 * @param {string} url
 * @param {string} port
 * @param {number} workers its WEB_CONCURRENCY
 * @param {string} profileDir
 * @param {Record<string, string>} [overrides] variables set over the stack's issuer environment
 */
function launchIssuer(base, name, url, port, workers, profileDir, overrides = {}) {
  const env = { ...base.issuerEnv, ...overrides, ISSUER: url, PORT: port, WEB_CONCURRENCY: String(workers) };
  const issuer = startChild(name, ISSUER_MAIN, env, base.logDir, profiling(base.options.profile, profileDir));
  base.session.children.push(issuer);
  base.servers.set(url, issuer);
  return issuer;
}

/** @param {string} url @param {Child} issuer */
async function waitForIssuer(url, issuer) {
  await waitForOk(`${url}/readyz`, issuer);
  await waitForOk(`${url}/healthz`, issuer);
}

/**
 * Waits until every process of an issuer has started (its cluster primary and `workers` workers,
 * or the one process) and the group has gone quiet: under 25 ms of CPU in half a second. readyz
 * answers as soon as one worker listens, and a worker still starting (or creating the first
 * signing key) must not spend its start-up in a measured run: the CPU figures count a process
 * that appeared during the run from its start. Gives up after 30 s, with a progress line.
 * @param {Child} issuer
 * @param {number} workers its WEB_CONCURRENCY
 * @returns {Promise<number>} the ms it took
 */
async function waitUntilSettled(issuer, workers) {
  const pid = issuer.process.pid;
  const started = Date.now();
  if (pid === undefined) return 0;
  const probe = processGroup('server', pid);
  const expected = workers > 1 ? workers + 1 : 1;
  let last = readCpu([probe]);
  while (Date.now() - started < 30_000) {
    await sleep(500);
    const now = readCpu([probe]);
    const before = last?.['server'];
    const group = now?.['server'];
    if (before === undefined || group === undefined) return Date.now() - started; // no /proc
    let used = 0;
    for (const [member, ms] of group) used += ms - (before.get(member) ?? 0);
    if (group.size >= expected && used < 25) return Date.now() - started;
    last = now;
  }
  progress(`${issuer.name} still busy or not every worker up after 30 s; measuring anyway`);
  return Date.now() - started;
}

/**
 * The clients, API key and user, created with the CLI against the same database.
 * @param {Record<string, string>} env the issuer's, with its PORT
 * @returns {Promise<Credentials>}
 */
async function provisionWithCli(env) {
  /** @param {string[]} args @param {string} [stdin] */
  const sigil = async (args, stdin) => asRecord(JSON.parse(await runNode(SIGIL_CLI, [...args, '--json'], env, { stdin: stdin ?? '' })));
  const username = `bench-${randomBytes(3).toString('hex')}`;
  const userPassword = randomBytes(15).toString('base64url');
  const [machine, guard, password, refresh, admin, apiKey] = await Promise.all([
    sigil(['clients', 'create', '--name', 'bench-machine', '--grant', 'client_credentials', '--scope', 'orders:read', '--role', 'admin', '--resource', AUDIENCE]),
    sigil(['clients', 'create', '--name', 'bench-orders-api', '--grant', 'client_credentials', '--resource', AUDIENCE]),
    sigil(['clients', 'create', '--name', 'bench-password', '--grant', 'password', '--scope', 'orders:read', '--resource', AUDIENCE, '--first-party']),
    sigil(['clients', 'create', '--name', 'bench-refresh', '--grant', 'password', '--grant', 'refresh_token', '--scope', 'orders:read', '--resource', AUDIENCE, '--first-party']),
    sigil(['clients', 'create', '--name', 'bench-admin', '--grant', 'client_credentials', '--scope', ADMIN_SCOPE, '--resource', adminAudience(env['ISSUER'] ?? '')]),
    sigil(['api-keys', 'create', '--name', 'bench-key', '--resource', AUDIENCE, '--scope', 'orders:read']),
    sigil(['users', 'create', '--username', username, '--password-stdin', '--role', 'admin'], `${userPassword}\n`),
  ]);
  const client = (/** @type {Record<string, unknown>} */ created) => ({ id: String(created['client_id']), secret: String(created['client_secret']) });
  return { machine: client(machine), guard: client(guard), password: client(password), refresh: client(refresh), admin: client(admin), apiKey: String(apiKey['key']), username, userPassword };
}

/**
 * The many-clients workload's clients (its 1-client baseline uses the first of them), created
 * over the issuer's HTTP admin API (`POST /admin/v1/clients`, PROVISION_IN_FLIGHT at a time,
 * with the admin client's token): as many as that workload needs when it runs, 1 when only the
 * baseline does, none when neither does.
 * @param {Base} base
 * @param {string} issuerUrl
 * @param {string} tokenUrl
 * @param {{ id: string, secret: string }} admin the admin API's client
 * @returns {Promise<{ clients: Started['manyClients'], provisioning: Started['provisioning'] }>}
 */
async function provisionManyClients(base, issuerUrl, tokenUrl, admin) {
  const { options } = base;
  if (!options.selected('client_credentials_1') && !options.selected('client_credentials_10k')) return { clients: [], provisioning: null };
  const count = options.selected('client_credentials_10k') ? options.manyClients : 1;
  progress(`provisioning ${count.toLocaleString('en-US')} client(s) for the many-clients workload (POST /admin/v1/clients, ${PROVISION_IN_FLIGHT} in flight)`);
  const token = await adminToken(tokenUrl, issuerUrl, admin);
  const created = await createClientsOverHttp({ issuerUrl, token, count, inFlight: PROVISION_IN_FLIGHT, body: (index) => machineClientBody(`bench-many-${index}`, AUDIENCE) });
  const clientsPerSec = count / (created.ms / 1000);
  progress(`${count.toLocaleString('en-US')} client(s) provisioned in ${(created.ms / 1000).toFixed(1)} s (${Math.round(clientsPerSec).toLocaleString('en-US')} clients/s)`);
  return { clients: created.clients, provisioning: { count, ms: created.ms, clientsPerSec, path: created.path, inFlight: PROVISION_IN_FLIGHT } };
}

/**
 * orders-api (guarded by the issuer) and the baseline servers: the minimal token endpoint,
 * orders-api's frame without the guard, the minimal orders service and the engine alone (with
 * the machine client's own id and secret, a static client of its in-memory configuration).
 * @param {Base} base
 * @param {Started['urls']} urls
 * @param {Credentials} credentials
 * @param {{ orders: number, minimal: number, unguarded: number, minimalOrders: number, engine: number, ordersNoFeed: number }} ports
 */
async function startOthers(base, urls, credentials, ports) {
  const { logDir, options } = base;
  const workers = String(options.workers);
  // the revocation feed polled ten times as often as by default, so that its cost shows (workloads/revocation-feed.js)
  const ordersEnv = { PORT: String(ports.orders), ISSUER: urls.issuer, AUDIENCE, GUARD_CLIENT_ID: credentials.guard.id, GUARD_CLIENT_SECRET: credentials.guard.secret, REVOCATION_POLL_INTERVAL_MS: String(ORDERS_FEED_POLL_MS), LOG_LEVEL: 'warn', NODE_ENV: '' };
  const orders = startChild('orders-api', ORDERS_MAIN, ordersEnv, logDir, profiling(options.profile, base.profileDir));
  const ordersNoFeed = startChild('orders-api-no-feed', ORDERS_MAIN, { PORT: String(ports.ordersNoFeed), ISSUER: urls.issuer, AUDIENCE, LOG_LEVEL: 'warn', NODE_ENV: '' }, logDir);
  const minimal = startChild('minimal-token', path.join(here, 'baselines/minimal-token.js'), { PORT: String(ports.minimal), WORKERS: workers, NODE_ENV: '' }, logDir);
  // orders-api's own process and environment, GET /orders without the guard
  const unguarded = startChild('unguarded-orders', path.join(here, 'baselines/unguarded-orders.js'), { ...ordersEnv, PORT: String(ports.unguarded) }, logDir);
  const minimalOrders = startChild('minimal-orders', path.join(here, 'baselines/minimal-orders.js'), { PORT: String(ports.minimalOrders), NODE_ENV: '' }, logDir);
  const engineEnv = { PORT: String(ports.engine), WORKERS: workers, CLIENT_ID: credentials.machine.id, CLIENT_SECRET: credentials.machine.secret, AUDIENCE, NODE_ENV: '' };
  // profiled too (its own subdirectory): the floor Sigil's issuer is compared with, function by function
  const engine = startChild('bare-engine', path.join(here, 'baselines/bare-engine.js'), engineEnv, logDir, profiling(options.profile, path.join(base.profileDir, 'bare-engine')));
  base.session.children.push(engine, orders, minimal, unguarded, minimalOrders, ordersNoFeed);
  await Promise.all([
    waitForOk(`${urls.orders}/healthz`, orders),
    waitForOk(`${urls.ordersNoFeed}/healthz`, ordersNoFeed),
    waitForOk(`${urls.minimal}/healthz`, minimal),
    waitForOk(`${urls.engine}/.well-known/openid-configuration`, engine),
    waitForOk(`${urls.unguarded}/healthz`, unguarded),
    waitForOk(`${urls.minimalOrders}/healthz`, minimalOrders),
  ]);
  progress('orders-api and the baseline servers up');
  base.servers.set(urls.orders, orders).set(urls.minimal, minimal).set(urls.unguarded, unguarded).set(urls.minimalOrders, minimalOrders).set(urls.engine, engine).set(urls.ordersNoFeed, ordersNoFeed);
}

/**
 * Endpoints named by an issuer's discovery document, each checked to be on that issuer.
 * @param {string} issuerUrl
 * @param {string[]} names e.g. token_endpoint
 * @param {string} whose the error's subject
 */
async function discover(issuerUrl, names, whose) {
  const document = asRecord(JSON.parse((await once(`${issuerUrl}/.well-known/openid-configuration`)).text));
  const urls = names.map((name) => String(document[name]));
  for (const url of urls) {
    if (new URL(url).origin !== issuerUrl) throw new Error(`${whose} names ${url}, outside ${issuerUrl}`);
  }
  return urls;
}

/**
 * What a workload's CPU figures count: the process group of the server it targets (a cluster
 * primary and its workers), and every PostgreSQL process (the issuer's queries).
 * @param {Base} base
 * @param {string} url
 */
export function cpuProbes(base, url) {
  const pid = base.servers.get(new URL(url).origin)?.process.pid;
  return [...(pid === undefined ? [] : [processGroup('server', pid)]), ...(base.options.embedded ? [] : [byCommand('postgres', 'postgres')])];
}

/**
 * Every server the bench runs (each its process group, by its name), PostgreSQL's processes and
 * the load generator: the fixed-rate rows' CPU timeline (lib/paced.js).
 * @param {Base} base
 */
export function timelineProbes(base) {
  const servers = [...new Set(base.servers.values())].flatMap((child) => (child.process.pid === undefined || child.process.exitCode !== null ? [] : [processGroup(child.name, child.process.pid)]));
  return [...servers, ...(base.options.embedded ? [] : [byCommand('postgres', 'postgres')])];
}

/**
 * @typedef {object} SecondIssuer a second issuer beside the stack's
 * @property {string} name its log's name, and its --profile subdirectory
 * @property {number} workers its WEB_CONCURRENCY
 * @property {string} description how it differs, for the progress line (e.g. "1 worker")
 * @property {Record<string, string>} [env] variables set over the stack's issuer environment (never printed)
 */

/**
 * Runs `use` against a second issuer on the same database, KEYS_DIR and DATA_DIR (its own port
 * and ISSUER, its own workers and `env`), once every worker is up and quiet, and up only while
 * `use` runs, so it takes no CPU from the rest of the run. Its profiles go to a subdirectory, apart from the main issuer's.
 * @param {Base} base
 * @param {SecondIssuer} second
 * @param {(tokenUrl: string) => Promise<void>} use
 */
export async function withSecondIssuer(base, second, use) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const issuer = launchIssuer(base, second.name, url, String(port), second.workers, path.join(base.profileDir, second.name), second.env);
  try {
    await waitForIssuer(url, issuer);
    const settledMs = await waitUntilSettled(issuer, second.workers);
    const [tokenUrl = ''] = await discover(url, ['token_endpoint'], `${second.name}'s discovery`);
    progress(`second issuer up on ${url} (${second.description}; same database, KEYS_DIR and DATA_DIR), settled ${(settledMs / 1000).toFixed(1)} s after readyz`);
    await use(tokenUrl);
  } finally {
    await stopChild(issuer);
    progress('second issuer stopped');
  }
}

/**
 * What {@link withCacheIssuer} hands its caller: the issuer's token endpoint and its control
 * port's two operations (see lib/cache-issuer.js).
 * @typedef {object} CacheIssuer
 * @property {string} tokenUrl
 * @property {(count: number) => Promise<{ ms: number, authorizations: string[] }>} provision creates `count` clients with the `clients.create` admin command
 * @property {() => Promise<number>} heapUsed V8's used heap after two full collections, in bytes
 */

/**
 * Runs `use` against the issuer in one process, started by lib/cache-issuer.js under
 * `--expose-gc` on the same database, KEYS_DIR and DATA_DIR (its own port and ISSUER,
 * CLIENT_CACHE_MAX `cacheMax`), and up only while `use` runs.
 * @param {Base} base
 * @param {number} cacheMax
 * @param {(issuer: CacheIssuer) => Promise<void>} use
 */
export async function withCacheIssuer(base, cacheMax, use) {
  const [port, controlPort] = [await freePort(), await freePort()];
  const url = `http://127.0.0.1:${port}`;
  const control = `http://127.0.0.1:${controlPort}`;
  const env = {
    ...base.issuerEnv,
    ISSUER: url,
    PORT: String(port),
    WEB_CONCURRENCY: '1',
    CLIENT_CACHE_MAX: String(cacheMax),
    CONTROL_PORT: String(controlPort),
    ISSUER_DIST,
    BENCH_AUDIENCE: AUDIENCE,
  };
  const name = 'issuer-cache';
  const issuer = startChild(name, path.join(here, 'lib/cache-issuer.js'), env, base.logDir, ['--expose-gc', ...profiling(base.options.profile, path.join(base.profileDir, name))]);
  base.session.children.push(issuer);
  base.servers.set(url, issuer);
  /** @param {string} route @param {string} method */
  const ask = async (route, method) => {
    const answer = await once(`${control}${route}`, { method });
    if (!answer.ok) throw new Error(`${name} ${method} ${route}: ${answer.status} ${answer.text.slice(0, 300)}`);
    return asRecord(JSON.parse(answer.text));
  };
  try {
    await waitForIssuer(url, issuer);
    await waitUntilSettled(issuer, 1);
    const [tokenUrl = ''] = await discover(url, ['token_endpoint'], `${name}'s discovery`);
    progress(`issuer in one process up on ${url} (CLIENT_CACHE_MAX=${cacheMax}, --expose-gc; same database, KEYS_DIR and DATA_DIR)`);
    await use({
      tokenUrl,
      provision: async (count) => {
        const answer = await ask(`/provision?count=${count}`, 'POST');
        return { ms: Number(answer['ms']), authorizations: /** @type {string[]} */ (answer['authorizations']) };
      },
      heapUsed: async () => Number((await ask('/heap', 'GET'))['heapUsed']),
    });
  } finally {
    await stopChild(issuer);
    progress('issuer in one process stopped');
  }
}
