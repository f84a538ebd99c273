// @ts-check
/**
 * Instructions per client credentials token, the issuer against oidc-provider alone, counted by
 * valgrind (callgrind) instead of timed: the same figure on a noisy machine from run to run,
 * for telling what a change to the token path costs or saves (a few microseconds are within
 * the CPU-time noise of `npm run bench`, not of this).
 *
 *   node bench/instructions.js [--warm N] [--requests N] [--in-flight N] [--idle S] [--cache] [--engine-only | --issuer-only]
 *
 * Both servers run in one process each (the issuer with WEB_CONCURRENCY=1), under callgrind,
 * with `node --single-threaded` (V8's compiler and collector on the main thread, so that their
 * work is counted in the same place every run). Each gets `--warm` requests (default 1,500),
 * then its counters are dumped, then `--requests` more (default 1,000, `--in-flight` at a time,
 * default 4) and a last dump. Between the two, `--idle` seconds without requests (default 30)
 * are dumped too: what the process does by the clock (timers, the event loop's delay monitor,
 * collections when idle) costs about 50 times as much per request under valgrind as natively,
 * so that work, in proportion to the measured dump's duration, is taken off it. The report is
 * the rest divided by the requests the last dump covered, split into the main thread (JavaScript, the engine, node's HTTP) and the other
 * threads (libuv's pool: the RS256 signature). `--cache` adds callgrind's cache simulation
 * (instruction and data cache misses per token; about twice as slow). Takes 5–10 minutes:
 * valgrind runs node about 50 times slower. Needs valgrind on PATH and PostgreSQL at
 * BENCH_DATABASE_URL (a database is created beside it and dropped at the end).
 */
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';

import { FORM } from './lib/http.js';
import { parseFlags, positiveFlag } from './lib/flags.js';
import { fail, progress } from './lib/log.js';
import { withOneClient } from './lib/one-client.js';
import { freePort, sleep } from './lib/processes.js';
import { AUDIENCE, ISSUER_DIST, here } from './setup.js';

const BARE_ENGINE = path.join(here, 'baselines/bare-engine.js');
const run = promisify(execFile);

/**
 * @typedef {object} Counted one server's second dump
 * @property {Record<string, number>} mainThread events per token
 * @property {Record<string, number>} otherThreads events per token
 * @property {number} collectorPerToken the main thread's instructions in V8's collector per token (COLLECTOR_ENTRIES), as counted: the collections an idle process makes are not those of a busy one
 * @property {number} mutatorPerToken the main thread's other instructions per token, the idle process's (outside its collector) taken off: the figure to compare, since a window of a few thousand tokens holds one full collection or none
 * @property {Record<string, number>} idleMainThreadPerSecond the main thread's events per second without requests
 * @property {number} idleShareOfMainThread the share of the measured dump's main-thread instructions taken off as idle work
 * @property {number} measuredSeconds
 * @property {number} requests the requests the dump covers (the measured ones, and at most a few sent to wake the process for the dump)
 */

const usage = 'usage: node bench/instructions.js [--warm N] [--requests N] [--in-flight N] [--idle S] [--cache] [--engine-only | --issuer-only]';
/** @returns {{ warm: number, requests: number, inFlight: number, idle: number, cache: boolean, servers: ('issuer' | 'engine')[] }} */
function options() {
  const values = parseFlags(usage, { warm: { type: 'string' }, requests: { type: 'string' }, 'in-flight': { type: 'string' }, idle: { type: 'string' }, cache: { type: 'boolean' }, 'engine-only': { type: 'boolean' }, 'issuer-only': { type: 'boolean' } });
  /** @param {string | undefined} value @param {number} fallback @param {string} flag */
  const positive = (value, fallback, flag) => positiveFlag(value, fallback, flag, usage);
  if (values['engine-only'] === true && values['issuer-only'] === true) fail(`--engine-only and --issuer-only exclude each other\n${usage}`);
  /** @type {('issuer' | 'engine')[]} */
  const servers = values['engine-only'] === true ? ['engine'] : values['issuer-only'] === true ? ['issuer'] : ['issuer', 'engine'];
  return {
    warm: positive(values.warm, 1500, 'warm'),
    requests: positive(values.requests, 1000, 'requests'),
    inFlight: positive(values['in-flight'], 4, 'in-flight'),
    idle: positive(values.idle, 30, 'idle'),
    cache: values.cache === true,
    servers,
  };
}

/**
 * One keep-alive client sending the machine client's client credentials request, `inFlight`
 * at a time; a request on a connection the server closed meanwhile is sent again.
 * @param {string} url
 * @param {string} authorization
 * @param {number} inFlight
 */
function tokenRequests(url, authorization, inFlight) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: inFlight });
  const body = 'grant_type=client_credentials&scope=orders%3Aread';
  const headers = { authorization, 'content-type': FORM, 'content-length': String(Buffer.byteLength(body)) };
  /** @returns {Promise<void>} */
  const attempt = () =>
    new Promise((resolve, reject) => {
      const request = http.request(url, { method: 'POST', agent, headers }, (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk) => {
          text += chunk;
        });
        response.on('end', () => (response.statusCode === 200 ? resolve() : reject(new Error(`${url}: ${response.statusCode} ${text.slice(0, 200)}`))));
      });
      request.on('error', reject);
      request.end(body);
    });
  const one = async () => {
    for (let retry = 0; ; retry += 1) {
      try {
        return await attempt();
      } catch (error) {
        if (retry >= 3 || (error instanceof Error && 'code' in error && error.code !== 'ECONNRESET')) throw error;
      }
    }
  };
  /** @param {number} count */
  const send = async (count) => {
    let left = count;
    const lane = async () => {
      while (left > 0) {
        left -= 1;
        await one();
      }
    };
    await Promise.all(Array.from({ length: inFlight }, lane));
  };
  return { one, send, close: () => agent.destroy() };
}

/**
 * Dumps callgrind's counters of `pid` (and zeroes them). callgrind takes the command when the
 * process runs, so requests are sent one at a time until it has: each is counted in the dump.
 * @param {number} pid
 * @param {string} label
 * @param {() => Promise<void>} one
 * @returns {Promise<number>} the requests sent to wake the process
 */
async function dump(pid, label, one) {
  let done = false;
  const dumped = run('callgrind_control', ['--dump=' + label, String(pid)]).finally(() => {
    done = true;
  });
  let woken = 0;
  while (!done) {
    await one();
    woken += 1;
    await sleep(20);
  }
  await dumped;
  return woken;
}

/**
 * A dump's files, one per thread: with `--separate-threads=yes` each thread's counts are in
 * `<prefix>.<pid>.<dump>-<thread>`, thread 1 the main thread.
 * @param {string} dir
 * @param {string} prefix
 * @param {number} dumpNumber
 * @returns {{ file: string, thread: number }[]}
 */
function dumpFiles(dir, prefix, dumpNumber) {
  const pattern = new RegExp(`^${prefix}\\.\\d+\\.${dumpNumber}-(\\d+)$`, 'u');
  const files = readdirSync(dir).flatMap((name) => {
    const match = pattern.exec(name);
    return match === null ? [] : [{ file: path.join(dir, name), thread: Number(match[1]) }];
  });
  if (files.length === 0) throw new Error(`no callgrind dump ${dumpNumber} of ${prefix} in ${dir}`);
  return files;
}

/**
 * Sums a dump's events by thread: the main thread's, and the other threads' together.
 * @param {string} dir
 * @param {string} prefix
 * @param {number} dumpNumber
 */
function dumpEvents(dir, prefix, dumpNumber) {
  /** @type {Record<string, number>} */
  const main = {};
  /** @type {Record<string, number>} */
  const others = {};
  for (const { file, thread } of dumpFiles(dir, prefix, dumpNumber)) {
    const text = readFileSync(file, 'utf8');
    const names = /^events: (.+)$/mu.exec(text)?.[1]?.split(' ') ?? [];
    const values = (/^summary: (.+)$/mu.exec(text) ?? /^totals: (.+)$/mu.exec(text))?.[1]?.split(' ').map(Number) ?? [];
    const into = thread === 1 ? main : others;
    names.forEach((name, index) => {
      into[name] = (into[name] ?? 0) + (values[index] ?? 0);
    });
  }
  if (Object.keys(main).length === 0) throw new Error(`no main thread in callgrind dump ${dumpNumber} of ${prefix} in ${dir}`);
  return { main, others };
}

/**
 * V8's collector on a dump's main thread, by the inclusive counts of the functions it enters
 * by (callgrind_annotate): a collection (scavenge or mark-compact, with its sweeping), an
 * incremental marking step or start, sweeping done on allocation. None of them runs inside
 * another, except for the sweeping a collection completes, which is a small share.
 */
const COLLECTOR_ENTRIES = [
  'v8::internal::Heap::CollectGarbage(',
  'v8::internal::IncrementalMarking::Step(',
  'v8::internal::IncrementalMarking::Start(',
  'v8::internal::PagedSpaceBase::ContributeToSweepingMain(',
];

/**
 * The main thread's instructions in V8's collector in dump `dumpNumber` of `prefix`.
 * @param {string} dir
 * @param {string} prefix
 * @param {number} dumpNumber
 */
async function collectorInstructions(dir, prefix, dumpNumber) {
  const file = dumpFiles(dir, prefix, dumpNumber).find(({ thread }) => thread === 1)?.file;
  if (file === undefined) throw new Error(`no main thread in callgrind dump ${dumpNumber} of ${prefix} in ${dir}`);
  const { stdout } = await run('callgrind_annotate', ['--inclusive=yes', '--threshold=100', file], { maxBuffer: 256 * 1024 * 1024 });
  let total = 0;
  for (const line of stdout.split('\n')) {
    const match = /^\s*([\d,]+) .*?\?\?\?:(.+)$/u.exec(line);
    if (match === null) continue;
    const name = match[2] ?? '';
    if (COLLECTOR_ENTRIES.some((entry) => name.startsWith(entry))) total += Number((match[1] ?? '0').replaceAll(',', ''));
  }
  return total;
}

/**
 * Runs one server under callgrind, warms it, counts `requests` tokens.
 * @param {'issuer' | 'engine'} server
 * @param {ReturnType<typeof options>} opts
 * @param {import('./lib/one-client.js').OneClient} setup
 * @returns {Promise<Counted>}
 */
async function count(server, opts, setup) {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const env =
    server === 'issuer'
      ? { ...setup.env, ISSUER: issuer, PORT: String(port), WEB_CONCURRENCY: '1' }
      : { PORT: String(port), WORKERS: '1', CLIENT_ID: setup.clientId, CLIENT_SECRET: setup.clientSecret, AUDIENCE };
  const script = server === 'issuer' ? path.join(ISSUER_DIST, 'main.js') : BARE_ENGINE;
  const args = ['--tool=callgrind', '--separate-threads=yes', '--dump-instr=no', `--callgrind-out-file=${path.join(setup.dir, `${server}.%p`)}`];
  if (opts.cache) args.push('--cache-sim=yes');
  const child = spawn('valgrind', [...args, process.execPath, '--single-threaded', script], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  /** @type {Buffer[]} */
  const stderr = [];
  child.stderr.on('data', (chunk) => stderr.push(chunk));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const pid = child.pid;
  if (pid === undefined) throw new Error('valgrind did not start');
  const requests = tokenRequests(`${issuer}/token`, setup.authorization, opts.inFlight);
  try {
    const deadline = Date.now() + 10 * 60_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`${server} exited under valgrind:\n${Buffer.concat(stderr).toString('utf8').slice(-2000)}`);
      const ready = await fetch(`${issuer}/.well-known/openid-configuration`).then(
        (response) => response.ok,
        () => false,
      );
      if (ready) break;
      if (Date.now() > deadline) throw new Error(`${server} not ready under valgrind after 10 minutes`);
      await sleep(1000);
    }
    progress(`${server} up under callgrind (pid ${pid}); ${opts.warm} requests to warm it`);
    await requests.send(opts.warm);
    await dump(pid, 'warm', requests.one);
    // what the process does without requests (timers, the event loop's delay monitor, idle-time
    // collections) goes by the clock, and the clock runs about 50 times faster than the process here
    progress(`${server}: ${opts.idle} s without requests`);
    const idleStart = performance.now();
    await sleep(opts.idle * 1000);
    await dump(pid, 'idle', requests.one);
    const idleSeconds = (performance.now() - idleStart) / 1000;
    progress(`${server}: counting ${opts.requests} requests`);
    const measuredStart = performance.now();
    await requests.send(opts.requests);
    const woken = await dump(pid, 'measured', requests.one);
    const measuredSeconds = (performance.now() - measuredStart) / 1000;
    const idle = dumpEvents(setup.dir, server, 2);
    const measured = dumpEvents(setup.dir, server, 3);
    const tokens = opts.requests + woken;
    const scale = measuredSeconds / idleSeconds;
    const collectorMeasured = await collectorInstructions(setup.dir, server, 3);
    const collectorIdle = await collectorInstructions(setup.dir, server, 2);
    const mutatorMeasured = (measured.main['Ir'] ?? 0) - collectorMeasured;
    const mutatorIdle = (idle.main['Ir'] ?? 0) - collectorIdle;
    /** @param {Record<string, number>} events @param {Record<string, number>} idleEvents */
    const perToken = (events, idleEvents) => Object.fromEntries(Object.entries(events).map(([name, value]) => [name, Math.max(0, value - (idleEvents[name] ?? 0) * scale) / tokens]));
    /** @param {Record<string, number>} events */
    const perSecond = (events) => Object.fromEntries(Object.entries(events).map(([name, value]) => [name, value / idleSeconds]));
    return {
      mainThread: perToken(measured.main, idle.main),
      otherThreads: perToken(measured.others, idle.others),
      collectorPerToken: collectorMeasured / tokens,
      mutatorPerToken: Math.max(0, mutatorMeasured - mutatorIdle * scale) / tokens,
      idleMainThreadPerSecond: perSecond(idle.main),
      idleShareOfMainThread: ((idle.main['Ir'] ?? 0) * scale) / (measured.main['Ir'] ?? 1),
      requests: tokens,
      measuredSeconds,
    };
  } finally {
    requests.close();
    child.kill('SIGTERM');
    await Promise.race([exited, sleep(30_000)]);
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}

/** @param {number} value */
const thousands = (value) => `${(value / 1000).toFixed(1)} K`;

async function main() {
  const opts = options();
  await run('valgrind', ['--version']).catch(() => fail('valgrind is not installed (Debian: apt-get install valgrind)'));
  await withOneClient('instructions', async (setup) => {
    progress(`callgrind${opts.cache ? ' with its cache simulation' : ''}: ${opts.servers.join(' and ')} side by side (instruction counts do not depend on the load)`);
    const results = await Promise.all(opts.servers.map((server) => count(server, opts, setup)));
    /** @type {Record<string, Counted>} */
    const byServer = Object.fromEntries(opts.servers.map((server, index) => [server, /** @type {Counted} */ (results[index])]));
    const events = opts.cache ? ['Ir', 'I1mr', 'D1mr', 'D1mw', 'ILmr', 'DLmr', 'DLmw'] : ['Ir'];
    const lines = [`per client credentials token (${opts.requests} counted after ${opts.warm}, ${opts.inFlight} in flight)`];
    for (const [server, counted] of Object.entries(byServer)) {
      const main = events.map((event) => `${event} ${thousands(counted.mainThread[event] ?? 0)}`).join(', ');
      lines.push(
        `  ${server.padEnd(6)} main thread: ${main}; other threads: Ir ${thousands(counted.otherThreads['Ir'] ?? 0)} (idle work taken off: ${(counted.idleShareOfMainThread * 100).toFixed(1)} % of the main thread's count, over ${counted.measuredSeconds.toFixed(0)} s)`,
        `  ${server.padEnd(6)} main thread without the collector: Ir ${thousands(counted.mutatorPerToken)} (idle work outside it taken off); in the collector: Ir ${thousands(counted.collectorPerToken)}`,
      );
    }
    const issuer = byServer['issuer'];
    const engine = byServer['engine'];
    if (issuer !== undefined && engine !== undefined) {
      for (const event of events) {
        const ratio = (engine.mainThread[event] ?? 0) / (issuer.mainThread[event] ?? 1);
        lines.push(`  engine / issuer, main thread ${event}: ${ratio.toFixed(3)}`);
      }
      lines.push(`  engine / issuer, main thread without the collector: ${(engine.mutatorPerToken / issuer.mutatorPerToken).toFixed(3)}`);
    }
    process.stdout.write(`${lines.join('\n')}\n`);
    const resultsDir = path.join(here, 'results');
    mkdirSync(resultsDir, { recursive: true });
    writeFileSync(path.join(resultsDir, 'instructions.json'), `${JSON.stringify({ at: new Date().toISOString(), options: opts, perToken: byServer }, null, 2)}\n`);
  });
}

main().catch((/** @type {unknown} */ error) => {
  process.stderr.write(`bench/instructions: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
