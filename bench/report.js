// @ts-check
/**
 * The end of a run: each row's ratios to its baseline, the worker scaling, the key stores' CPU
 * and the latency target, then one table (and a few lines under it) on stdout and the same
 * figures, the machine and the set-up in bench/results/latest.json.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { asRecord } from './lib/http.js';
import { loggedProblems } from './lib/processes.js';
import { ARGON2, here, root } from './setup.js';
import { FRACTION_OF_PEAK, P99_TARGET_MS } from './workloads/at-80.js';
import { DB_KEYS_CPU_TARGET } from './workloads/client-credentials.js';

/** @typedef {import('./workloads/measure.js').Row} Row */
/** @typedef {import('./workloads/measure.js').Context} Context */

/**
 * ratio and cpuRatio of every row to its baseline row (null without one, or without a figure).
 * @param {Row[]} rows
 */
function addRatios(rows) {
  for (const row of rows) {
    const base = rows.find((other) => other.id === row.baseline);
    row.ratio = base !== undefined && base.reqPerSec > 0 ? row.reqPerSec / base.reqPerSec : null;
    const baseCpu = base?.cpuMsPerRequest ?? null;
    row.cpuRatio = baseCpu !== null && row.cpuMsPerRequest !== null && row.cpuMsPerRequest > 0 ? baseCpu / row.cpuMsPerRequest : null;
  }
}

/**
 * Client credentials req/s with every worker ÷ with 1 worker (ideal: the number of workers).
 * @param {Row[]} rows
 * @param {number} workers
 */
function scalingOf(rows, workers) {
  const allWorkersRow = rows.find((row) => row.id === 'client_credentials');
  const oneWorkerRow = rows.find((row) => row.id === 'client_credentials_1_worker');
  return allWorkersRow !== undefined && oneWorkerRow !== undefined && oneWorkerRow.reqPerSec > 0
    ? { workers, allWorkersReqPerSec: allWorkersRow.reqPerSec, oneWorkerReqPerSec: oneWorkerRow.reqPerSec, speedup: allWorkersRow.reqPerSec / oneWorkerRow.reqPerSec }
    : null;
}

/**
 * Client credentials CPU per request with KEY_STORE=database ÷ with the file store (the issue's
 * target: at most 1 + DB_KEYS_CPU_TARGET).
 * @param {Row[]} rows
 */
function keyStoresOf(rows) {
  const files = rows.find((row) => row.id === 'client_credentials')?.cpuMsPerRequest ?? null;
  const database = rows.find((row) => row.id === 'client_credentials_db_keys')?.cpuMsPerRequest ?? null;
  if (files === null || database === null || files <= 0) return null;
  const cpuPerRequest = database / files;
  return { filesCpuMsPerRequest: files, databaseCpuMsPerRequest: database, cpuPerRequest, target: 1 + DB_KEYS_CPU_TARGET, withinTarget: cpuPerRequest <= 1 + DB_KEYS_CPU_TARGET };
}

/** The bound on the heap each cached client may take, in bytes. */
const HEAP_PER_CLIENT_TARGET = 2048;

/**
 * The client cache at scale (workloads/client-cache.js): heap per cached client at each count,
 * and the many-clients throughput against one client in the same process.
 * @param {Row[]} rows
 */
function clientCacheOf(rows) {
  const row = rows.find((candidate) => candidate.id === 'client_credentials_100k');
  if (row === undefined) return null;
  const heap = asRecord(row.details?.['heapPerClient']);
  const perClient = Object.fromEntries(Object.entries(heap).filter(([count]) => /^\d+$/u.test(count)).map(([count, bytes]) => [count, Number(bytes)]));
  return { clients: row.details?.['clients'] ?? null, heapPerClientBytes: perClient, heapTargetBytes: HEAP_PER_CLIENT_TARGET, ratio: row.ratio, cpuRatio: row.cpuRatio };
}

/** @param {Row[]} rows */
function latencyTargetOf(rows) {
  return {
    description: `p99 below ${P99_TARGET_MS} ms at ${FRACTION_OF_PEAK * 100}% of the measured peak (the issue's target; reported, never a pass/fail)`,
    p99TargetMs: P99_TARGET_MS,
    results: Object.fromEntries(
      rows
        .filter((row) => row.id.endsWith('_at_80'))
        .map((row) => [row.id, { rateReqPerSec: row.details?.['targetRate'] ?? null, p99Ms: row.p99Ms, p999Ms: Number(row.details?.['p999Ms'] ?? Number.NaN), p99Under50Ms: row.p99Ms !== null && row.p99Ms < P99_TARGET_MS }]),
    ),
  };
}

/** @param {number | null} loadBefore */
function machineOf(loadBefore) {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model ?? 'unknown',
    cpuCount: cpus.length,
    availableParallelism: os.availableParallelism(),
    totalMemoryMiB: Math.round(os.totalmem() / 1024 / 1024),
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    /** the 1-minute load average before the run and after it: other work on the machine skews every figure */
    loadAverageBefore: loadBefore,
    loadAverageAfter: os.loadavg()[0] ?? null,
  };
}

/** @param {Context} context */
function setupOf(context) {
  const { options, stack } = context;
  const autocannonVersion = String(asRecord(JSON.parse(readFileSync(path.join(root, 'node_modules/autocannon/package.json'), 'utf8')))['version']);
  return {
    database: options.embedded ? 'PGlite (embedded)' : `PostgreSQL ${stack.postgresVersion ?? ''}`.trim(),
    issuerWorkers: options.workers,
    minimalTokenWorkers: options.workers,
    ordersApiProcesses: 1,
    loadGenerator: `autocannon ${autocannonVersion}, in the bench process (servers are child processes), loopback`,
    connections: options.shape.connections,
    warmupSeconds: options.shape.warmupSeconds,
    measuredSeconds: options.shape.seconds,
    argon2: ARGON2,
    uvThreadpoolSize: process.env['UV_THREADPOOL_SIZE'] ?? null,
    /** clients of the many-clients workload: how many (1,000 with --quick), how they were created, how long it took */
    manyClients: stack.provisioning === null ? null : { ...stack.provisioning, quickMode: options.quick },
    fixedRateFractionOfPeak: FRACTION_OF_PEAK,
  };
}

/**
 * What the figures mean, in latest.json itself.
 * @param {Context} context
 */
function notes(context) {
  const { quick, manyClients } = context.options;
  return [
    'reqPerSec is the mean of autocannon\'s per-second samples over the measured run; the warm-up run is reported apart (details.warmup).',
    'ratio = reqPerSec / the baseline row\'s reqPerSec; in-process baselines are operations/s.',
    'cpuMsPerRequest = CPU time (user + system, from /proc) of the targeted server\'s process group plus every postgres process, over the measured run, per completed request ' +
      '(details.cpuMsPerRequest has each part and the load generator\'s); in-process rows: this process\'s CPU per operation, pool threads included. ' +
      'cpuRatio = the baseline\'s cpuMsPerRequest / the row\'s: like ratio, but hardly moved by what else shares the cores.',
    'latencies are autocannon\'s (1 ms resolution); the in-process argon2id row gives its own p50/p99 per verify.',
    'password grant: the right password every time, so the brute-force throttle (failures only) never engages.',
    `refresh grant: a pool of ${context.refresh.seeded} refresh tokens from password grants; each 200 puts its rotated token back, every token is sent once.`,
    `client_credentials_10k: ${manyClients.toLocaleString('en-US')} confidential clients${quick ? ' (1,000 with --quick; the id stays client_credentials_10k)' : ''}, ` +
      'created over the issuer\'s HTTP admin API (POST /admin/v1/clients, an admin client\'s token, setup.manyClients.inFlight at a time; setup.manyClients.clientsPerSec is the provisioning rate); ' +
      'each request takes the next client round-robin in autocannon\'s setupRequest. client_credentials_1 runs the same code with a list of one ' +
      '(the first of those clients), so ratio = many clients / 1 client shows only the cost of distinct clients. ' +
      'Before the measured run every client makes one request to every issuer worker (bench/lib/prime.js: connections opened one at a time alternate over the workers; ' +
      'details.firstUse: the rate of those first uses, each a database read and a validation by the engine in that worker), ' +
      'so the run shows the steady state with every client known everywhere; details.requestsPerClient says how often each client came round in the run (warm-up included).',
    'client_credentials_100k: the issuer in one process (bench/lib/cache-issuer.js: startIssuer under node --expose-gc, CLIENT_CACHE_MAX as large as the run\'s clients, on the same database, KEYS_DIR and DATA_DIR), ' +
      `its ${quick ? '10,000' : '100,000'} clients created with the clients.create admin command in that process; every client makes its first request before the measured run, ` +
      'and V8\'s used heap after two full collections is read with one client cached, after the first tenth and after all of them: details.heapPerClient (bytes per cached client at each count). ' +
      'Its baseline client_credentials_100k_1 sends the same requests to the same process with a list of one of those clients.',
    'engine_token: oidc-provider alone (bench/baselines/bare-engine.js: its in-memory adapter, one static client, the same grant, resource and RS256 JWT, ' +
      'the same workers, no express/helmet/metrics/storage), with the machine client\'s id and secret: the floor Sigil builds on. ' +
      'The engine signs with WebCrypto on libuv\'s threadpool, so one worker already keeps about 1.7 cores busy.',
    'client_credentials_1_worker: a second issuer with WEB_CONCURRENCY=1 on the same database, KEYS_DIR and DATA_DIR, started for that row and stopped after it; ' +
      'its ratio is 1 worker / all workers, and `scaling.speedup` is the other way round (ideal: the number of workers). Skipped with --embedded or when the run has 1 worker.',
    'client_credentials_db_keys: a second issuer with KEY_STORE=database (a fresh KEYS_ENCRYPTION_KEY generated by the bench, never printed) and as many workers as the main one, ' +
      'on the same database and DATA_DIR, started for that row and stopped after it; it creates its own first signing key in the database. ' +
      `Its cpuRatio is the file store's CPU per request / the database store's; keyStores.cpuPerRequest is the other way round (the issue's target: at most ${1 + DB_KEYS_CPU_TARGET}). Skipped with --embedded.`,
    'admin_create_clients: POST /admin/v1/clients at full load (autocannon, a new client in every body, an access token of the admin client for <ISSUER>/admin with scope sigil:admin); ' +
      'reqPerSec counts only the 201s (clients created per second; details.responsesPerSec counts every answer), and non2xx every answer that was not a 201. ' +
      'Its baseline admin_create_clients_command runs the same clients.create admin command without HTTP, as the CLI does (runAdminCommand in the bench process on one knex pool against PostgreSQL; ' +
      'the issuer\'s admin socket with --embedded), as many in flight as the row has connections, for as long; its CPU per client counts the bench process when the command runs there ' +
      '(PostgreSQL), the issuer (each creation\'s change notification reaches its workers) and PostgreSQL. ' +
      'ratio = the admin API\'s rate / the command\'s: what HTTP, the token\'s verification and the JSON answer add to the same transaction.',
    `*_at_80: the workload again at a fixed rate of ${FRACTION_OF_PEAK * 100}% of its peak row (ratio = achieved / peak), open loop (bench/lib/paced.js): ` +
      'requests are sent on a schedule over at most the same number of connections, and latency counts from the moment a request was due, so queueing shows. ' +
      'autocannon\'s overallRate is not used: it sends each connection\'s per-second quota back to back at the start of every second. ' +
      `latencyTarget says whether p99 < ${P99_TARGET_MS} ms (the issue's target); it never fails the run.`,
  ];
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

/** @typedef {ReturnType<typeof buildReport>} Report */

/** @param {Context} context */
function buildReport(context) {
  const { options, stack, rows } = context;
  addRatios(rows);
  const finishedAt = new Date();
  return {
    startedAt: stack.startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    mode: options.quick ? 'quick' : 'full',
    machine: machineOf(stack.loadBefore),
    setup: setupOf(context),
    preflight: context.preflight,
    workloads: rows,
    skipped: context.skipped,
    scaling: scalingOf(rows, options.workers),
    keyStores: keyStoresOf(rows),
    clientCache: clientCacheOf(rows),
    latencyTarget: latencyTargetOf(rows),
    childLogs: Object.fromEntries(stack.session.children.map((child) => [child.name, loggedProblems(child)])),
    notes: notes(context),
  };
}

/**
 * The table, then the provisioning time, the worker scaling, the key stores' CPU, the p99 target
 * lines, any skipped row, the machine and the shape of the run, and the children's warnings.
 * @param {Context} context
 * @param {Report} report
 * @param {string} resultsFile
 */
function print(context, report, resultsFile) {
  const { rows, options, stack } = context;
  const { workers, shape } = options;
  const { provisioning } = stack;
  const write = (/** @type {string} */ text) => process.stdout.write(text);
  write(`\n${table(rows)}\n\n`);
  if (provisioning !== null) {
    write(
      `${provisioning.count.toLocaleString('en-US')} client(s) provisioned in ${(provisioning.ms / 1000).toFixed(1)} s, ` +
        `${Math.round(provisioning.clientsPerSec).toLocaleString('en-US')} clients/s (${provisioning.path})\n`,
    );
  }
  if (report.scaling !== null) write(`worker scaling: client credentials with ${workers} workers = ${report.scaling.speedup.toFixed(2)}× 1 worker (ideal ${workers}×)\n`);
  if (report.keyStores !== null) {
    const { cpuPerRequest, withinTarget } = report.keyStores;
    const percent = (cpuPerRequest - 1) * 100;
    write(
      `database key store: client credentials CPU per request ${cpuPerRequest.toFixed(2)}× the file store's ` +
        `(${percent >= 0 ? '+' : ''}${percent.toFixed(1)} %; target: within ${DB_KEYS_CPU_TARGET * 100} %, ${withinTarget ? 'met' : 'NOT met'})\n`,
    );
  }
  if (report.clientCache !== null) {
    const { heapPerClientBytes, heapTargetBytes, ratio } = report.clientCache;
    const figures = Object.entries(heapPerClientBytes).map(([count, bytes]) => `${bytes.toLocaleString('en-US')} B at ${Number(count).toLocaleString('en-US')}`);
    const within = Object.values(heapPerClientBytes).every((bytes) => bytes <= heapTargetBytes);
    write(
      `client cache: heap per cached client ${figures.join(', ')} (target: at most ${heapTargetBytes.toLocaleString('en-US')} B, ${within ? 'met' : 'NOT met'}); ` +
        `${Number(report.clientCache.clients).toLocaleString('en-US')} clients = ${ratio === null ? '?' : ratio.toFixed(2)}× 1 client\n`,
    );
  }
  for (const [rowId, result] of Object.entries(report.latencyTarget.results)) {
    const label = rows.find((row) => row.id === rowId)?.workload ?? rowId;
    write(`${label}: p99 ${result.p99Ms === null ? '?' : result.p99Ms.toFixed(1)} ms (p99.9 ${Number.isNaN(result.p999Ms) ? '?' : result.p999Ms.toFixed(1)} ms), ${result.p99Under50Ms ? 'under' : 'NOT under'} the ${P99_TARGET_MS} ms target\n`);
  }
  for (const { id: rowId, reason } of report.skipped) write(`skipped ${rowId}: ${reason}\n`);
  write(
    `${report.machine.cpuModel} ×${report.machine.cpuCount}, Node ${report.machine.node}, ${report.setup.database}, issuer ${workers} worker(s), ` +
      `${shape.connections} connections, ${shape.seconds} s per workload (${shape.warmupSeconds} s warm-up), ` +
      `load average ${stack.loadBefore?.toFixed(2) ?? '?'} before the run\n`,
  );
  for (const [name, problems] of Object.entries(report.childLogs)) {
    if (problems.count > 0) write(`${name} logged ${problems.count} warning/error line(s), e.g. ${problems.samples[0] ?? ''}\n`);
  }
  write(`written to ${path.relative(process.cwd(), resultsFile) || resultsFile}\n`);
}

/**
 * Writes bench/results/latest.json and prints the table.
 * @param {Context} context
 */
export function finish(context) {
  const report = buildReport(context);
  const resultsDir = path.join(here, 'results');
  mkdirSync(resultsDir, { recursive: true });
  const resultsFile = path.join(resultsDir, 'latest.json');
  writeFileSync(resultsFile, `${JSON.stringify(report, null, 2)}\n`);
  print(context, report, resultsFile);
}
