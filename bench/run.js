// @ts-check
/* global AbortSignal -- Node's global, missing from the shared ESLint globals */
/**
 * `npm run bench`: boots the real issuer and orders-api (child processes) against a fresh
 * PostgreSQL database (or PGlite with --embedded), provisions its own clients, API key and
 * user with the CLI (and 10,000 more clients through the issuer's admin command path), drives
 * each workload from this process with autocannon over loopback (fixed-rate workloads with
 * bench/lib/paced.js), measures baselines in the same run, prints one table and writes
 * bench/results/latest.json.
 *
 *   node bench/run.js [--quick] [--embedded] [--workers N] [--only id,id,...] [--profile]
 *
 * BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres) names a database
 * the bench connects to in order to create `sigil_bench_<time>` next to it (dropped at the end).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, URLSearchParams } from 'node:url';
import { parseArgs } from 'node:util';

import pg from 'pg';

import { byCommand, processGroup } from './lib/cpu.js';
import { rawRs256 } from './lib/inprocess.js';
import { measure } from './lib/load.js';
import { measureAtRate } from './lib/paced.js';
import { primeEveryWorker } from './lib/prime.js';
import { freePort, loggedProblems, logTail, runNode, startChild, stopChild, waitForOk } from './lib/processes.js';
import { createClients, pooled } from './lib/provision.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const ISSUER_DIST = path.join(root, 'services/issuer/dist');
const ISSUER_MAIN = path.join(ISSUER_DIST, 'main.js');
const ORDERS_MAIN = path.join(root, 'services/orders-api/dist/main.js');
const SIGIL_CLI = path.join(root, 'services/issuer/bin/sigil.js');
const AUDIENCE = 'http://localhost:4001';
const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
/** The issuer's defaults (config.ts); the bench does not override them. */
const ARGON2 = { memoryKib: 19_456, timeCost: 2, parallelism: 1 };
const ARGON2_CONCURRENCY = 8;
/** `clients.create` commands in flight while provisioning the many-clients workload. */
const PROVISION_IN_FLIGHT = 8;
/** The fixed-rate workloads run at this fraction of the measured peak... */
const FRACTION_OF_PEAK = 0.8;
/** ...and the issue's target for them is p99 below this (reported, never enforced). */
const P99_TARGET_MS = 50;

/** Every workload id (the `id` column of latest.json), in the order they run. */
const WORKLOAD_IDS = [
  'raw_rs256',
  'minimal_token',
  'engine_token',
  'client_credentials',
  'client_credentials_1',
  'client_credentials_10k',
  'client_credentials_1_worker',
  'client_credentials_at_80',
  'unguarded_orders',
  'guarded_orders',
  'guarded_orders_at_80',
  'api_key_orders',
  'jwks',
  'discovery',
  'refresh',
  'raw_argon2id',
  'password',
];
/** Rows a row cannot do without (its rate, or the point of its ratio): --only runs them too. */
/** @type {Record<string, string>} */
const NEEDS = {
  client_credentials_10k: 'client_credentials_1',
  client_credentials_1_worker: 'client_credentials',
  client_credentials_at_80: 'client_credentials',
  guarded_orders_at_80: 'guarded_orders',
};

// ---------------------------------------------------------------------------------------------
// arguments

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    embedded: { type: 'boolean', default: false },
    workers: { type: 'string' },
    only: { type: 'string' },
    profile: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});
if (flags.help) {
  process.stdout.write('usage: node bench/run.js [--quick] [--embedded] [--workers N] [--only id,id,...] [--profile]\n');
  process.exit(0);
}
const quick = flags.quick === true;
const embedded = flags.embedded === true;
const workers = flags.workers === undefined ? (embedded ? 1 : os.availableParallelism()) : Number(flags.workers);
if (!Number.isInteger(workers) || workers < 1 || workers > 64) fail(`--workers must be a whole number from 1 to 64 (got "${flags.workers}")`);
if (embedded && workers > 1) fail('--workers above 1 needs PostgreSQL (the embedded database has a single owner process)');

/** Workload ids to run (the `id` column of latest.json); every workload when absent. */
const only = flags.only === undefined ? null : new Set(flags.only.split(',').map((name) => name.trim()).filter((name) => name !== ''));
/** ids --only did not name but a named row needs @type {string[]} */
const added = [];
if (only !== null) {
  const unknown = [...only].filter((name) => !WORKLOAD_IDS.includes(name));
  if (unknown.length > 0) fail(`--only: unknown workload id(s) ${unknown.join(', ')}; known: ${WORKLOAD_IDS.join(', ')}`);
  if (only.size === 0) fail('--only needs at least one workload id');
  for (const name of [...only]) {
    const needed = NEEDS[name];
    if (needed !== undefined && !only.has(needed)) {
      only.add(needed);
      added.push(`${needed} (for ${name})`);
    }
  }
}
/** @param {string} rowId */
const selected = (rowId) => only === null || only.has(rowId);
const profile = flags.profile === true;
/** How many clients the many-clients workload spreads its requests over. */
const manyClients = quick ? 1_000 : 10_000;

const shape = quick ? { connections: 8, seconds: 3, warmupSeconds: 1 } : { connections: 16, seconds: 10, warmupSeconds: 2 };
/** A bound on the whole run: whatever happens, everything is stopped by then. */
const WATCHDOG_MS = (quick ? 4 : 10) * 60_000;

/** @param {string} message @returns {never} */
function fail(message) {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(2);
}

/** @param {string} message */
const progress = (message) => process.stderr.write(`bench: ${message}\n`);
if (added.length > 0) progress(`--only: also running ${added.join(', ')}`);

// ---------------------------------------------------------------------------------------------
// clean-up: every resource registers how it is released; run once, newest first

/** @type {{ name: string, run: () => Promise<void> | void }[]} */
const cleanups = [];
let cleanedUp = false;
async function cleanUp() {
  if (cleanedUp) return;
  cleanedUp = true;
  for (const { name, run } of cleanups.reverse()) {
    try {
      await run();
    } catch (error) {
      process.stderr.write(`bench: clean-up of ${name} failed: ${error instanceof Error ? error.message : String(error)}\n`);
    }
  }
}
for (const signal of /** @type {const} */ (['SIGINT', 'SIGTERM'])) {
  process.once(signal, () => {
    progress(`${signal}: stopping`);
    void cleanUp().then(() => process.exit(130));
  });
}
const watchdog = setTimeout(() => {
  progress(`the run exceeded ${WATCHDOG_MS / 60_000} minutes; stopping`);
  void cleanUp().then(() => process.exit(1));
}, WATCHDOG_MS);

/** @type {import('./lib/processes.js').Child[]} */
const children = [];

// ---------------------------------------------------------------------------------------------
// helpers

/** @param {string} id @param {string} secret */
const basic = (id, secret) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

/** @param {Record<string, string>} fields */
const form = (fields) => new URLSearchParams(fields).toString();

const FORM = 'application/x-www-form-urlencoded';

/**
 * One request outside the load generator: the status and (for a failure) the body.
 * @param {string} url
 * @param {{ method?: string, headers?: Record<string, string>, body?: string }} [init]
 */
async function once(url, init = {}) {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  const text = await response.text();
  return { status: response.status, ok: response.ok, text };
}

/**
 * A row's CPU figure: the serving processes' and PostgreSQL's ms per request (the load generator's apart).
 * @param {Record<string, number> | null} perRequest
 */
const cpuTotal = (perRequest) => (perRequest === null ? null : (perRequest['server'] ?? 0) + (perRequest['postgres'] ?? 0));
/** @param {unknown} value */
const asRecord = (value) => /** @type {Record<string, unknown>} */ (typeof value === 'object' && value !== null ? value : {});

// ---------------------------------------------------------------------------------------------
// the run

/**
 * @typedef {object} Row
 * @property {string} id
 * @property {string} workload
 * @property {'http' | 'in-process'} kind
 * @property {number} reqPerSec requests/s (http) or operations/s (in-process)
 * @property {number | null} p50Ms
 * @property {number | null} p99Ms
 * @property {number | null} non2xx
 * @property {number | null} errors
 * @property {string | null} baseline id of the row it is compared with
 * @property {number | null} ratio reqPerSec / the baseline's
 * @property {number | null} cpuMsPerRequest CPU ms per request of the serving processes plus PostgreSQL's (per operation for in-process rows); null without /proc
 * @property {number | null} cpuRatio the baseline's cpuMsPerRequest / this row's (like ratio, above 1 means cheaper than the baseline)
 * @property {Record<string, unknown>} [details]
 */

async function main() {
  if (!existsSync(ISSUER_MAIN) || !existsSync(ORDERS_MAIN)) fail('services are not built: run `npm run build` first');
  const startedAt = new Date();
  const loadBefore = os.loadavg()[0] ?? null;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'sigil-bench-'));
  cleanups.push({ name: `temp dir ${tmp}`, run: () => rmSync(tmp, { recursive: true, force: true }) });
  const logDir = path.join(tmp, 'logs');
  mkdirSync(logDir);

  // -- database
  let databaseUrl = '';
  /** @type {string | null} */
  let postgresVersion = null;
  if (!embedded) {
    const adminUrl = process.env['BENCH_DATABASE_URL'] ?? DEFAULT_DATABASE_URL;
    const name = `sigil_bench_${Date.now()}`;
    const admin = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5000 });
    await admin.connect().catch((/** @type {unknown} */ error) => {
      throw new Error(`cannot connect to BENCH_DATABASE_URL (${error instanceof Error ? error.message : String(error)}); set it, or use --embedded`);
    });
    try {
      postgresVersion = String(asRecord((await admin.query('SHOW server_version')).rows[0])['server_version'] ?? '');
      await admin.query(`CREATE DATABASE "${name}"`);
    } finally {
      await admin.end();
    }
    cleanups.push({
      name: `database ${name}`,
      run: async () => {
        const dropper = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5000 });
        await dropper.connect();
        try {
          await dropper.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
        } finally {
          await dropper.end();
        }
      },
    });
    const url = new URL(adminUrl);
    url.pathname = `/${name}`;
    databaseUrl = url.toString();
    progress(`database ${name} created`);
  }

  // -- processes
  const [issuerPort, ordersPort, minimalPort, unguardedPort, enginePort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  const issuerUrl = `http://127.0.0.1:${issuerPort}`;
  const ordersUrl = `http://127.0.0.1:${ordersPort}`;
  const minimalUrl = `http://127.0.0.1:${minimalPort}`;
  const unguardedUrl = `http://127.0.0.1:${unguardedPort}`;
  const engineUrl = `http://127.0.0.1:${enginePort}`;
  // blank values mean "default" to the issuer: a variable in the caller's environment must not change the run
  const issuerEnv = {
    DATABASE_URL: databaseUrl,
    DATA_DIR: path.join(tmp, 'data'),
    KEYS_DIR: path.join(tmp, 'keys'),
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
  cleanups.push({ name: 'child processes', run: async () => void (await Promise.all(children.map((child) => stopChild(child)))) });

  // --profile: every issuer and orders-api process writes a V8 CPU profile when it stops
  const profileDir = path.join(here, 'results', 'profiles', startedAt.toISOString().replace(/[:.]/gu, '-'));
  const profiling = profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  if (profile) mkdirSync(profileDir, { recursive: true });
  const issuer = startChild('issuer', ISSUER_MAIN, { ...issuerEnv, PORT: String(issuerPort), WEB_CONCURRENCY: String(workers) }, logDir, profiling);
  children.push(issuer);
  await waitForOk(`${issuerUrl}/readyz`, issuer);
  await waitForOk(`${issuerUrl}/healthz`, issuer);
  progress(`issuer up on ${issuerUrl} (${workers} worker${workers === 1 ? '' : 's'}, ${embedded ? 'PGlite' : 'PostgreSQL'})`);

  // -- provisioning, with the CLI against the same database
  /** @param {string[]} args @param {string} [stdin] */
  const sigil = async (args, stdin) => asRecord(JSON.parse(await runNode(SIGIL_CLI, [...args, '--json'], { ...issuerEnv, PORT: String(issuerPort) }, { stdin: stdin ?? '' })));
  const username = `bench-${randomBytes(3).toString('hex')}`;
  const userPassword = randomBytes(15).toString('base64url');
  const [machine, guardClient, passwordClient, refreshClient, apiKey] = await Promise.all([
    sigil(['clients', 'create', '--name', 'bench-machine', '--grant', 'client_credentials', '--scope', 'orders:read', '--role', 'admin', '--resource', AUDIENCE]),
    sigil(['clients', 'create', '--name', 'bench-orders-api', '--grant', 'client_credentials', '--resource', AUDIENCE]),
    sigil(['clients', 'create', '--name', 'bench-password', '--grant', 'password', '--scope', 'orders:read', '--resource', AUDIENCE, '--first-party']),
    sigil(['clients', 'create', '--name', 'bench-refresh', '--grant', 'password', '--grant', 'refresh_token', '--scope', 'orders:read', '--resource', AUDIENCE, '--first-party']),
    sigil(['api-keys', 'create', '--name', 'bench-key', '--scope', 'orders:read']),
    sigil(['users', 'create', '--username', username, '--password-stdin', '--role', 'admin'], `${userPassword}\n`),
  ]);
  const id = (/** @type {Record<string, unknown>} */ client) => String(client['client_id']);
  const secret = (/** @type {Record<string, unknown>} */ client) => String(client['client_secret']);
  progress('clients, API key and user provisioned');

  // -- the many-clients workload's clients (and the 1-client baseline's, the first of them),
  // through the issuer's admin command path: not one CLI process per client
  /** @type {{ count: number, ms: number, path: string, inFlight: number } | null} */
  let provisioning = null;
  /** Basic authorization headers of those clients, in creation order. */
  /** @type {string[]} */
  let manyAuthorizations = [];
  if (selected('client_credentials_1') || selected('client_credentials_10k')) {
    const count = selected('client_credentials_10k') ? manyClients : 1;
    progress(`provisioning ${count.toLocaleString('en-US')} client(s) for the many-clients workload (clients.create, ${embedded ? 'through the issuer\'s admin socket' : 'runAdminCommand against PostgreSQL'}, ${PROVISION_IN_FLIGHT} in flight)`);
    const created = await createClients({
      issuerDist: ISSUER_DIST,
      databaseUrl: embedded ? undefined : databaseUrl,
      dataDir: issuerEnv.DATA_DIR,
      argon2: ARGON2,
      count,
      inFlight: PROVISION_IN_FLIGHT,
      input: (index) => ({ name: `bench-many-${index}`, grants: ['client_credentials'], scopes: ['orders:read'], resources: [AUDIENCE] }),
      log: progress,
    });
    manyAuthorizations = created.clients.map((client) => basic(client.id, client.secret));
    provisioning = { count, ms: created.ms, path: created.path, inFlight: PROVISION_IN_FLIGHT };
    progress(`${count.toLocaleString('en-US')} client(s) provisioned in ${(created.ms / 1000).toFixed(1)} s (${Math.round(count / (created.ms / 1000)).toLocaleString('en-US')}/s)`);
  }

  const orders = startChild(
    'orders-api',
    ORDERS_MAIN,
    {
      PORT: String(ordersPort),
      ISSUER: issuerUrl,
      AUDIENCE,
      GUARD_CLIENT_ID: id(guardClient),
      GUARD_CLIENT_SECRET: secret(guardClient),
      LOG_LEVEL: 'warn',
      NODE_ENV: '',
    },
    logDir,
    profiling,
  );
  const minimal = startChild('minimal-token', path.join(here, 'baselines/minimal-token.js'), { PORT: String(minimalPort), WORKERS: String(workers), NODE_ENV: '' }, logDir);
  const unguarded = startChild('unguarded-orders', path.join(here, 'baselines/unguarded-orders.js'), { PORT: String(unguardedPort), NODE_ENV: '' }, logDir);
  // the engine alone, with the machine client's own id and secret (a static client of its in-memory configuration)
  const engine = startChild(
    'bare-engine',
    path.join(here, 'baselines/bare-engine.js'),
    { PORT: String(enginePort), WORKERS: String(workers), CLIENT_ID: id(machine), CLIENT_SECRET: secret(machine), AUDIENCE, NODE_ENV: '' },
    logDir,
  );
  children.push(engine);
  children.push(orders, minimal, unguarded);
  await Promise.all([
    waitForOk(`${ordersUrl}/healthz`, orders),
    waitForOk(`${minimalUrl}/healthz`, minimal),
    waitForOk(`${engineUrl}/.well-known/openid-configuration`, engine),
    waitForOk(`${unguardedUrl}/healthz`, unguarded),
  ]);
  progress('orders-api and the baseline servers up');
  /** Each server by its origin: a workload's CPU per request is read off the server it targets. */
  const servers = new Map([
    [issuerUrl, issuer],
    [ordersUrl, orders],
    [minimalUrl, minimal],
    [unguardedUrl, unguarded],
    [engineUrl, engine],
  ]);
  /**
   * What a workload's CPU figures count: the process group of the server it targets (a cluster
   * primary and its workers), and every PostgreSQL process (the issuer's queries).
   * @param {string} url
   */
  const cpuProbes = (url) => {
    const pid = servers.get(new URL(url).origin)?.process.pid;
    return [...(pid === undefined ? [] : [processGroup('server', pid)]), ...(embedded ? [] : [byCommand('postgres', 'postgres')])];
  };

  // -- endpoints, from discovery
  const discoveryUrl = `${issuerUrl}/.well-known/openid-configuration`;
  const discovery = asRecord(JSON.parse((await once(discoveryUrl)).text));
  const tokenUrl = String(discovery['token_endpoint']);
  const jwksUrl = String(discovery['jwks_uri']);
  for (const url of [tokenUrl, jwksUrl]) {
    if (new URL(url).origin !== issuerUrl) throw new Error(`discovery names ${url}, outside ${issuerUrl}`);
  }

  // -- requests of each workload
  const ccBody = form({ grant_type: 'client_credentials', scope: 'orders:read' });
  const ccRequest = {
    method: 'POST',
    headers: { authorization: basic(id(machine), secret(machine)), 'content-type': FORM },
    body: ccBody,
  };
  /**
   * Client credentials spread over `authorizations` round-robin, one per request (autocannon's
   * setupRequest); the 1-client baseline goes through the same code with a list of one.
   * @param {string[]} authorizations
   * @returns {import('./lib/load.js').Workload}
   */
  const ccOver = (authorizations) => {
    let next = 0;
    return {
      url: tokenUrl,
      method: 'POST',
      headers: { 'content-type': FORM },
      body: ccBody,
      setupRequest: (request) => {
        const authorization = authorizations[next % authorizations.length] ?? '';
        next += 1;
        return { ...request, headers: { ...request.headers, authorization } };
      },
    };
  };
  const minimalRequest = { method: 'POST', headers: { 'content-type': FORM }, body: form({ grant_type: 'client_credentials', scope: 'orders:read' }) };
  const passwordRequest = {
    method: 'POST',
    headers: { authorization: basic(id(passwordClient), secret(passwordClient)), 'content-type': FORM },
    body: form({ grant_type: 'password', username, password: userPassword, scope: 'orders:read' }),
  };
  const refreshAuth = { authorization: basic(id(refreshClient), secret(refreshClient)), 'content-type': FORM };

  const tokenAnswer = await once(tokenUrl, ccRequest);
  if (!tokenAnswer.ok) throw new Error(`client credentials token request failed: ${tokenAnswer.status} ${tokenAnswer.text}`);
  const accessToken = String(asRecord(JSON.parse(tokenAnswer.text))['access_token']);
  const bearer = { authorization: `Bearer ${accessToken}` };
  const apiKeyHeader = { 'x-api-key': String(apiKey['key']) };

  // -- preflight: one request of each kind, so a failure is shown with its body before any load
  /** @type {Record<string, { status: number, body?: string }>} */
  const preflight = {};
  /** @param {string} name @param {string} url @param {{ method?: string, headers?: Record<string, string>, body?: string }} [init] */
  const check = async (name, url, init) => {
    const answer = await once(url, init);
    preflight[name] = answer.ok ? { status: answer.status } : { status: answer.status, body: answer.text.slice(0, 500) };
    if (!answer.ok) progress(`preflight ${name}: ${answer.status} ${answer.text.slice(0, 300)}`);
  };
  await check('client_credentials', tokenUrl, ccRequest);
  await check('minimal_token', `${minimalUrl}/token`, minimalRequest);
  await check('engine_token', `${engineUrl}/token`, ccRequest);
  await check('guarded_orders', `${ordersUrl}/orders`, { headers: bearer });
  await check('unguarded_orders', `${unguardedUrl}/orders`);
  await check('api_key_orders', `${ordersUrl}/orders`, { headers: apiKeyHeader });
  await check('jwks', jwksUrl);
  await check('discovery', discoveryUrl);
  await check('password', tokenUrl, passwordRequest);
  const lastOfMany = manyAuthorizations[manyAuthorizations.length - 1];
  if (lastOfMany !== undefined) {
    await check(`client_credentials_many_${manyAuthorizations.length}`, tokenUrl, { method: 'POST', headers: { authorization: lastOfMany, 'content-type': FORM }, body: ccBody });
  }

  // -- refresh tokens: a pool seeded by password grants; each answer puts its rotated token back
  // (every token is sent once; a run's end strands at most two per connection: the one in
  // flight and the one already built for the next request)
  const seedCount = shape.connections * 8;
  const seeded = await pooled(seedCount, 4, async () => {
    const answer = await once(tokenUrl, {
      method: 'POST',
      headers: refreshAuth,
      body: form({ grant_type: 'password', username, password: userPassword, scope: 'orders:read' }),
    });
    return answer.ok ? String(asRecord(JSON.parse(answer.text))['refresh_token'] ?? '') : `!${answer.status} ${answer.text.slice(0, 300)}`;
  });
  const seedFailure = seeded.find((token) => token === '' || token.startsWith('!'));
  if (seedFailure !== undefined) progress(`refresh pool: a password grant gave no refresh token: ${seedFailure || 'no refresh_token in the answer'}`);
  /** @type {string[]} */
  const refreshPool = seeded.filter((token) => token !== '' && !token.startsWith('!'));
  let refreshPoolEmpty = 0;
  {
    const token = refreshPool.pop() ?? '';
    const answer = await once(tokenUrl, { method: 'POST', headers: refreshAuth, body: form({ grant_type: 'refresh_token', refresh_token: token }) });
    preflight['refresh'] = answer.ok ? { status: answer.status } : { status: answer.status, body: answer.text.slice(0, 500) };
    if (answer.ok) {
      const rotated = asRecord(JSON.parse(answer.text))['refresh_token'];
      if (typeof rotated === 'string') refreshPool.push(rotated);
    } else {
      progress(`preflight refresh: ${answer.status} ${answer.text.slice(0, 300)}`);
    }
  }
  progress(`refresh pool seeded with ${refreshPool.length} tokens`);

  // -- measurements
  /** @type {Row[]} */
  const rows = [];
  /** Workloads that were asked for but could not run here, and why. */
  /** @type {{ id: string, reason: string }[]} */
  const skipped = [];
  /** @param {string} rowId @param {string} reason */
  const skip = (rowId, reason) => {
    skipped.push({ id: rowId, reason });
    progress(`${rowId}: skipped: ${reason}`);
  };
  /**
   * @param {string} label
   * @param {{ non2xx: number, errors: number, statusCodes: Record<string, number>, non2xxSamples: { status: number, body: string }[], warmup: { non2xx: number, errors: number } }} result
   */
  const reportFailures = (label, result) => {
    if (result.non2xx > 0 || result.errors > 0 || result.warmup.non2xx > 0 || result.warmup.errors > 0) {
      progress(`  ${label}: non-2xx ${result.non2xx} (warm-up ${result.warmup.non2xx}), errors ${result.errors} (warm-up ${result.warmup.errors}), statuses ${JSON.stringify(result.statusCodes)}`);
      for (const sample of result.non2xxSamples) progress(`    ${sample.status} ${sample.body}`);
    }
  };
  /**
   * Adds the row of an HTTP workload (full load or paced) and reports its failures.
   * @param {string} rowId
   * @param {string} label
   * @param {import('./lib/load.js').Workload} workload
   * @param {import('./lib/load.js').Measured | import('./lib/paced.js').PacedMeasured} result
   * @param {string | null} baseline
   * @param {Record<string, unknown>} extra added to the row's details
   */
  const addHttpRow = (rowId, label, workload, result, baseline, extra) => {
    rows.push({
      id: rowId,
      workload: label,
      kind: 'http',
      reqPerSec: result.reqPerSec,
      p50Ms: result.p50Ms,
      p99Ms: result.p99Ms,
      non2xx: result.non2xx,
      errors: result.errors,
      baseline,
      ratio: null,
      cpuMsPerRequest: cpuTotal(result.cpuMsPerRequest),
      cpuRatio: null,
      details: { ...result, url: workload.url, method: workload.method ?? 'GET', ...extra },
    });
    reportFailures(label, result);
  };
  /**
   * @param {string} rowId
   * @param {string} label
   * @param {import('./lib/load.js').Workload} workload
   * @param {string | null} baseline
   * @param {Record<string, unknown>} [extra] added to the row's details
   */
  const http = async (rowId, label, workload, baseline, extra = {}) => {
    if (!selected(rowId)) return;
    progress(`${label}: ${shape.warmupSeconds} s warm-up, ${shape.seconds} s measured, ${shape.connections} connections`);
    const result = await measure({ ...workload, cpu: cpuProbes(workload.url) }, shape);
    addHttpRow(rowId, label, workload, result, baseline, extra);
  };
  /**
   * The same workload again at a fixed rate of FRACTION_OF_PEAK × the peak row's req/s
   * (open loop, bench/lib/paced.js), for its latency at that load.
   * @param {string} rowId
   * @param {string} label
   * @param {import('./lib/load.js').Workload} workload
   * @param {string} peakId the row measured at full load
   */
  const atRate = async (rowId, label, workload, peakId) => {
    if (!selected(rowId)) return;
    const peak = rows.find((row) => row.id === peakId);
    if (peak === undefined || !(peak.reqPerSec > 0)) {
      skip(rowId, `no peak to take ${FRACTION_OF_PEAK * 100}% of (${peakId} did not run or served nothing)`);
      return;
    }
    const rate = Math.max(1, Math.round(peak.reqPerSec * FRACTION_OF_PEAK));
    progress(
      `${label}: ${rate.toLocaleString('en-US')} req/s (${FRACTION_OF_PEAK * 100}% of ${Math.round(peak.reqPerSec).toLocaleString('en-US')}), ` +
        `paced, ${shape.warmupSeconds} s warm-up, ${shape.seconds} s measured, up to ${shape.connections} connections`,
    );
    const result = await measureAtRate({ ...workload, cpu: cpuProbes(workload.url) }, { rate, ...shape });
    addHttpRow(rowId, label, workload, result, peakId, {
      loadGenerator: 'bench/lib/paced.js: open loop at a fixed rate, latency from each request\'s due time',
      fractionOfPeak: FRACTION_OF_PEAK,
      peakReqPerSec: peak.reqPerSec,
      p99TargetMs: P99_TARGET_MS,
      p99Under50Ms: result.p99Ms < P99_TARGET_MS,
    });
  };

  if (selected('raw_rs256')) {
    progress('raw RS256 signatures, one core, 2 s');
    const rs256 = rawRs256(2000);
    rows.push({
      id: 'raw_rs256',
      workload: 'baseline: raw RS256 sign, 1 core (ops/s)',
      kind: 'in-process',
      reqPerSec: rs256.opsPerSec,
      p50Ms: null,
      p99Ms: null,
      non2xx: null,
      errors: null,
      baseline: null,
      ratio: null,
      cpuMsPerRequest: rs256.cpuMsPerOp,
      cpuRatio: null,
      details: rs256,
    });
  }

  await http('minimal_token', 'baseline: minimal token endpoint', { url: `${minimalUrl}/token`, ...minimalRequest }, null);
  await http('engine_token', 'baseline: oidc-provider alone, client credentials', { url: `${engineUrl}/token`, ...ccRequest }, 'minimal_token');
  await http('client_credentials', 'client credentials POST /token', { url: tokenUrl, ...ccRequest }, 'minimal_token');

  // the same grant over many distinct clients, against the same code path with one client
  const manyLabel = `${manyClients.toLocaleString('en-US')} clients${quick ? ' (--quick: not 10,000)' : ''}`;
  const oneOfMany = manyAuthorizations.slice(0, 1);
  await http('client_credentials_1', 'client credentials, 1 client (round-robin path)', ccOver(oneOfMany), null, { clients: oneOfMany.length, rotation: 'round-robin, one client per request' });
  // the first request of each client in a worker reads it from the database and has the engine
  // validate it, and every worker keeps its own cache; so before the measured run every worker
  // sees every client once (timed on its own: details.firstUse), and the run shows the steady
  // state with every client known (machine clients come back every token lifetime)
  /** @type {{ requests: number, seconds: number, reqPerSec: number, non2xx: number, workers: number } | null} */
  let firstUse = null;
  if (selected('client_credentials_10k') && manyAuthorizations.length > 0) {
    const perWorker = Math.max(1, Math.floor(shape.connections / workers));
    progress(`first request of each of the ${manyLabel} in each of the issuer's ${workers} worker(s), ${perWorker} connection(s) per worker`);
    const primed = await primeEveryWorker(
      tokenUrl,
      workers,
      perWorker,
      manyAuthorizations.map((authorization) => ({ method: 'POST', headers: { authorization, 'content-type': FORM }, body: ccBody })),
    );
    firstUse = { ...primed, workers };
    progress(`  ${Math.round(primed.reqPerSec).toLocaleString('en-US')} req/s for first uses, non-2xx ${primed.non2xx}`);
  }
  await http('client_credentials_10k', `client credentials over ${manyLabel}`, ccOver(manyAuthorizations), 'client_credentials_1', {
    clients: manyAuthorizations.length,
    quickMode: quick,
    rotation: 'round-robin, one client per request',
    provisioning,
    firstUse,
  });
  const manyRow = rows.find((row) => row.id === 'client_credentials_10k');
  if (manyRow !== undefined && manyAuthorizations.length > 0) {
    // how often each client came round (warm-up included): about once means nearly every request used a client not seen before
    const warmupTotal = Object.values(asRecord(asRecord(manyRow.details?.['warmup'])['statusCodes'])).reduce((/** @type {number} */ sum, count) => sum + Number(count), 0);
    manyRow.details = { ...manyRow.details, requestsPerClient: (Number(manyRow.details?.['total'] ?? 0) + warmupTotal) / manyAuthorizations.length };
  }

  // one issuer worker against all of them: a second issuer, on the same database, keys and data
  // directory, up only while it is measured
  if (selected('client_credentials_1_worker')) {
    if (embedded) skip('client_credentials_1_worker', 'the embedded database has a single owner process, so no second issuer can run beside the first');
    else if (workers === 1) skip('client_credentials_1_worker', 'the issuer already runs 1 worker: the client credentials row is the 1-worker figure');
    else {
      const singlePort = await freePort();
      const singleUrl = `http://127.0.0.1:${singlePort}`;
      // its profiles in a subdirectory, apart from the main issuer's
      const singleProfileDir = path.join(profileDir, 'issuer-1-worker');
      if (profile) mkdirSync(singleProfileDir, { recursive: true });
      const singleProfiling = profile ? ['--cpu-prof', `--cpu-prof-dir=${singleProfileDir}`] : [];
      const single = startChild('issuer-1-worker', ISSUER_MAIN, { ...issuerEnv, ISSUER: singleUrl, PORT: String(singlePort), WEB_CONCURRENCY: '1' }, logDir, singleProfiling);
      children.push(single);
      servers.set(singleUrl, single);
      try {
        await waitForOk(`${singleUrl}/readyz`, single);
        await waitForOk(`${singleUrl}/healthz`, single);
        const singleTokenUrl = String(asRecord(JSON.parse((await once(`${singleUrl}/.well-known/openid-configuration`)).text))['token_endpoint']);
        if (new URL(singleTokenUrl).origin !== singleUrl) throw new Error(`the 1-worker issuer's discovery names ${singleTokenUrl}, outside ${singleUrl}`);
        progress(`second issuer up on ${singleUrl} (1 worker, same database, KEYS_DIR and DATA_DIR)`);
        await check('client_credentials_1_worker', singleTokenUrl, ccRequest);
        await http('client_credentials_1_worker', `client credentials POST /token, issuer 1 worker (vs ${workers})`, { url: singleTokenUrl, ...ccRequest }, 'client_credentials', {
          issuerWorkers: 1,
          comparedWithWorkers: workers,
        });
      } finally {
        await stopChild(single);
        progress('second issuer stopped');
      }
    }
  }
  await atRate('client_credentials_at_80', `client credentials at ${FRACTION_OF_PEAK * 100}% of peak (paced)`, { url: tokenUrl, ...ccRequest }, 'client_credentials');

  await http('unguarded_orders', 'baseline: unguarded GET /orders', { url: `${unguardedUrl}/orders` }, null);
  await http('guarded_orders', 'guarded GET /orders (bearer)', { url: `${ordersUrl}/orders`, headers: bearer }, 'unguarded_orders');
  await atRate('guarded_orders_at_80', `guarded GET /orders at ${FRACTION_OF_PEAK * 100}% of peak (paced)`, { url: `${ordersUrl}/orders`, headers: bearer }, 'guarded_orders');
  await http('api_key_orders', 'API key GET /orders (X-API-Key)', { url: `${ordersUrl}/orders`, headers: apiKeyHeader }, 'guarded_orders');
  await http('jwks', 'JWKS GET', { url: jwksUrl }, null);
  await http('discovery', 'discovery GET', { url: discoveryUrl }, null);
  await http(
    'refresh',
    'refresh grant POST /token (rotation)',
    {
      url: tokenUrl,
      method: 'POST',
      headers: refreshAuth,
      setupRequest: (request) => {
        let token = refreshPool.pop();
        if (token === undefined) {
          // never happens with a pool larger than the connections; if it does, it shows as 400s
          refreshPoolEmpty += 1;
          token = 'bench-refresh-pool-empty';
        }
        return { ...request, body: form({ grant_type: 'refresh_token', refresh_token: token }) };
      },
      onResponse: (status, body) => {
        if (status !== 200) return;
        try {
          const rotated = asRecord(JSON.parse(body))['refresh_token'];
          if (typeof rotated === 'string') refreshPool.push(rotated);
        } catch {
          // counted by the caller only through its status; a 200 without JSON would drain the pool
        }
      },
    },
    null,
  );
  const refreshRow = rows.find((row) => row.id === 'refresh');
  if (refreshRow !== undefined) refreshRow.details = { ...refreshRow.details, poolEmpty: refreshPoolEmpty, poolLeft: refreshPool.length, seeded: seedCount };

  if (selected('raw_argon2id')) {
    // the machine's capacity: a process of its own with libuv's pool sized to the cores
    const cores = os.availableParallelism();
    progress(`raw argon2id verifies (m=${ARGON2.memoryKib}, t=${ARGON2.timeCost}, p=${ARGON2.parallelism}), libuv pool of ${cores}, ${ARGON2_CONCURRENCY} in flight, 3 s`);
    const argon = /** @type {{ opsPerSec: number, ops: number, seconds: number, p50Ms: number, p99Ms: number, cpuMsPerOp: number, uvThreadpoolSize: string }} */ (
      JSON.parse(
        await runNode(
          path.join(here, 'baselines/argon2-capacity.js'),
          [ARGON2.memoryKib, ARGON2.timeCost, ARGON2.parallelism, ARGON2_CONCURRENCY, 3000].map(String),
          { UV_THREADPOOL_SIZE: String(cores) },
        ),
      )
    );
    rows.push({
      id: 'raw_argon2id',
      workload: `baseline: raw argon2id verify, pool of ${cores}, ${ARGON2_CONCURRENCY} in flight (ops/s)`,
      kind: 'in-process',
      reqPerSec: argon.opsPerSec,
      p50Ms: argon.p50Ms,
      p99Ms: argon.p99Ms,
      non2xx: null,
      errors: null,
      baseline: null,
      ratio: null,
      cpuMsPerRequest: argon.cpuMsPerOp,
      cpuRatio: null,
      details: { ...argon, parameters: ARGON2, concurrency: ARGON2_CONCURRENCY },
    });
  }
  await http('password', 'password grant POST /token', { url: tokenUrl, ...passwordRequest }, 'raw_argon2id');

  for (const row of rows) {
    const base = rows.find((other) => other.id === row.baseline);
    row.ratio = base !== undefined && base.reqPerSec > 0 ? row.reqPerSec / base.reqPerSec : null;
    const baseCpu = base?.cpuMsPerRequest ?? null;
    row.cpuRatio = baseCpu !== null && row.cpuMsPerRequest !== null && row.cpuMsPerRequest > 0 ? baseCpu / row.cpuMsPerRequest : null;
  }
  const allWorkersRow = rows.find((row) => row.id === 'client_credentials');
  const oneWorkerRow = rows.find((row) => row.id === 'client_credentials_1_worker');
  /** client credentials req/s with every worker ÷ with 1 worker (ideal: the number of workers) */
  const scaling =
    allWorkersRow !== undefined && oneWorkerRow !== undefined && oneWorkerRow.reqPerSec > 0
      ? { workers, allWorkersReqPerSec: allWorkersRow.reqPerSec, oneWorkerReqPerSec: oneWorkerRow.reqPerSec, speedup: allWorkersRow.reqPerSec / oneWorkerRow.reqPerSec }
      : null;
  const latencyTarget = {
    description: `p99 below ${P99_TARGET_MS} ms at ${FRACTION_OF_PEAK * 100}% of the measured peak (the issue's target; reported, never a pass/fail)`,
    p99TargetMs: P99_TARGET_MS,
    results: Object.fromEntries(
      rows
        .filter((row) => row.id.endsWith('_at_80'))
        .map((row) => [row.id, { rateReqPerSec: row.details?.['targetRate'] ?? null, p99Ms: row.p99Ms, p99Under50Ms: row.p99Ms !== null && row.p99Ms < P99_TARGET_MS }]),
    ),
  };

  // -- report
  const finishedAt = new Date();
  const cpus = os.cpus();
  const autocannonVersion = String(asRecord(JSON.parse(readFileSync(path.join(root, 'node_modules/autocannon/package.json'), 'utf8')))['version']);
  const report = {
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    mode: quick ? 'quick' : 'full',
    machine: {
      cpuModel: cpus[0]?.model ?? 'unknown',
      cpuCount: cpus.length,
      availableParallelism: os.availableParallelism(),
      totalMemoryMiB: Math.round(os.totalmem() / 1024 / 1024),
      platform: `${os.type()} ${os.release()} ${os.arch()}`,
      node: process.version,
      /** the 1-minute load average before the run and after it: other work on the machine skews every figure */
      loadAverageBefore: loadBefore,
      loadAverageAfter: os.loadavg()[0] ?? null,
    },
    setup: {
      database: embedded ? 'PGlite (embedded)' : `PostgreSQL ${postgresVersion ?? ''}`.trim(),
      issuerWorkers: workers,
      minimalTokenWorkers: workers,
      ordersApiProcesses: 1,
      loadGenerator: `autocannon ${autocannonVersion}, in the bench process (servers are child processes), loopback`,
      connections: shape.connections,
      warmupSeconds: shape.warmupSeconds,
      measuredSeconds: shape.seconds,
      argon2: ARGON2,
      uvThreadpoolSize: process.env['UV_THREADPOOL_SIZE'] ?? null,
      /** clients of the many-clients workload: how many (1,000 with --quick), how they were created, how long it took */
      manyClients: provisioning === null ? null : { ...provisioning, quickMode: quick },
      fixedRateFractionOfPeak: FRACTION_OF_PEAK,
    },
    preflight,
    workloads: rows,
    skipped,
    scaling,
    latencyTarget,
    childLogs: Object.fromEntries(children.map((child) => [child.name, loggedProblems(child)])),
    notes: [
      'reqPerSec is the mean of autocannon\'s per-second samples over the measured run; the warm-up run is reported apart (details.warmup).',
      'ratio = reqPerSec / the baseline row\'s reqPerSec; in-process baselines are operations/s.',
      'cpuMsPerRequest = CPU time (user + system, from /proc) of the targeted server\'s process group plus every postgres process, over the measured run, per completed request ' +
        '(details.cpuMsPerRequest has each part and the load generator\'s); in-process rows: this process\'s CPU per operation, pool threads included. ' +
        'cpuRatio = the baseline\'s cpuMsPerRequest / the row\'s: like ratio, but hardly moved by what else shares the cores.',
      'latencies are autocannon\'s (1 ms resolution); the in-process argon2id row gives its own p50/p99 per verify.',
      'password grant: the right password every time, so the brute-force throttle (failures only) never engages.',
      `refresh grant: a pool of ${seedCount} refresh tokens from password grants; each 200 puts its rotated token back, every token is sent once.`,
      `client_credentials_10k: ${manyClients.toLocaleString('en-US')} confidential clients${quick ? ' (1,000 with --quick; the id stays client_credentials_10k)' : ''}, ` +
        'created with the issuer\'s clients.create admin command (runAdminCommand against PostgreSQL, or the issuer\'s admin socket with --embedded); ' +
        'each request takes the next client round-robin in autocannon\'s setupRequest. client_credentials_1 runs the same code with a list of one ' +
        '(the first of those clients), so ratio = many clients / 1 client shows only the cost of distinct clients. ' +
        'Before the measured run every client makes one request to every issuer worker (bench/lib/prime.js: connections opened one at a time alternate over the workers; ' +
        'details.firstUse: the rate of those first uses, each a database read and a validation by the engine in that worker), ' +
        'so the run shows the steady state with every client known everywhere; details.requestsPerClient says how often each client came round in the run (warm-up included).',
      'engine_token: oidc-provider alone (bench/baselines/bare-engine.js: its in-memory adapter, one static client, the same grant, resource and RS256 JWT, ' +
        'the same workers, no express/helmet/metrics/storage), with the machine client\'s id and secret: the floor Sigil builds on. ' +
        'The engine signs with WebCrypto on libuv\'s threadpool, so one worker already keeps about 1.7 cores busy.',
      'client_credentials_1_worker: a second issuer with WEB_CONCURRENCY=1 on the same database, KEYS_DIR and DATA_DIR, started for that row and stopped after it; ' +
        'its ratio is 1 worker / all workers, and `scaling.speedup` is the other way round (ideal: the number of workers). Skipped with --embedded or when the run has 1 worker.',
      `*_at_80: the workload again at a fixed rate of ${FRACTION_OF_PEAK * 100}% of its peak row (ratio = achieved / peak), open loop (bench/lib/paced.js): ` +
        'requests are sent on a schedule over at most the same number of connections, and latency counts from the moment a request was due, so queueing shows. ' +
        'autocannon\'s overallRate is not used: it sends each connection\'s per-second quota back to back at the start of every second. ' +
        `latencyTarget says whether p99 < ${P99_TARGET_MS} ms (the issue's target); it never fails the run.`,
    ],
  };
  const resultsDir = path.join(here, 'results');
  mkdirSync(resultsDir, { recursive: true });
  const resultsFile = path.join(resultsDir, 'latest.json');
  writeFileSync(resultsFile, `${JSON.stringify(report, null, 2)}\n`);

  process.stdout.write(`\n${table(rows)}\n\n`);
  if (provisioning !== null) {
    process.stdout.write(`${provisioning.count.toLocaleString('en-US')} client(s) provisioned in ${(provisioning.ms / 1000).toFixed(1)} s (${provisioning.path})\n`);
  }
  if (scaling !== null) {
    process.stdout.write(`worker scaling: client credentials with ${workers} workers = ${scaling.speedup.toFixed(2)}× 1 worker (ideal ${workers}×)\n`);
  }
  for (const [rowId, result] of Object.entries(latencyTarget.results)) {
    const label = rows.find((row) => row.id === rowId)?.workload ?? rowId;
    process.stdout.write(`${label}: p99 ${result.p99Ms === null ? '?' : result.p99Ms.toFixed(1)} ms, ${result.p99Under50Ms ? 'under' : 'NOT under'} the ${P99_TARGET_MS} ms target\n`);
  }
  for (const { id: rowId, reason } of skipped) process.stdout.write(`skipped ${rowId}: ${reason}\n`);
  process.stdout.write(
    `${report.machine.cpuModel} ×${report.machine.cpuCount}, Node ${report.machine.node}, ${report.setup.database}, issuer ${workers} worker(s), ` +
      `${shape.connections} connections, ${shape.seconds} s per workload (${shape.warmupSeconds} s warm-up), ` +
      `load average ${loadBefore?.toFixed(2) ?? '?'} before the run\n`,
  );
  for (const [name, problems] of Object.entries(report.childLogs)) {
    if (problems.count > 0) process.stdout.write(`${name} logged ${problems.count} warning/error line(s), e.g. ${problems.samples[0] ?? ''}\n`);
  }
  process.stdout.write(`written to ${path.relative(process.cwd(), resultsFile) || resultsFile}\n`);
}

/**
 * @param {Row[]} rows
 * @returns {string}
 */
function table(rows) {
  const number = (/** @type {number | null} */ value, digits = 0) =>
    value === null ? '—' : value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
  // autocannon's latency histogram has 1 ms resolution
  const latency = (/** @type {number | null} */ value) => (value === null ? '—' : value < 1 ? '<1' : number(value));
  const header = ['workload', 'req/s', 'p50 ms', 'p99 ms', 'non-2xx', 'errors', 'baseline', 'ratio', 'CPU ms/req', 'CPU ratio'];
  const body = rows.map((row) => [
    row.workload,
    number(row.reqPerSec),
    latency(row.p50Ms),
    latency(row.p99Ms),
    number(row.non2xx),
    number(row.errors),
    row.baseline === null ? '—' : (rows.find((other) => other.id === row.baseline)?.workload.replace(/^baseline: /u, '') ?? row.baseline),
    row.ratio === null ? '—' : row.ratio.toFixed(2),
    row.cpuMsPerRequest === null ? '—' : row.cpuMsPerRequest.toFixed(row.cpuMsPerRequest < 10 ? 2 : 1),
    row.cpuRatio === null ? '—' : row.cpuRatio.toFixed(2),
  ]);
  const widths = header.map((title, i) => Math.max(title.length, ...body.map((cells) => (cells[i] ?? '').length)));
  const numeric = new Set([1, 2, 3, 4, 5, 7, 8, 9]);
  const line = (/** @type {string[]} */ cells) =>
    cells.map((cell, i) => (numeric.has(i) ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  return [line(header), widths.map((width) => '-'.repeat(width)).join('  '), ...body.map(line)].join('\n');
}

let exitCode = 0;
try {
  await main();
} catch (error) {
  exitCode = 1;
  // the bench's own failures are one line; anything else (a bug) gets its stack
  const text = error instanceof Error ? (error.constructor === Error ? error.message : (error.stack ?? error.message)) : String(error);
  // fetch's "fetch failed" says why only in its cause (ECONNREFUSED, ECONNRESET...)
  const cause = error instanceof Error && error.cause !== undefined ? `\ncaused by: ${error.cause instanceof Error ? error.cause.message : String(error.cause)}` : '';
  process.stderr.write(`bench: ${text}${cause}\n`);
  for (const child of children) process.stderr.write(`--- last lines of ${child.name}'s log\n${logTail(child)}\n`);
} finally {
  clearTimeout(watchdog);
  await cleanUp();
}
process.exit(exitCode);
