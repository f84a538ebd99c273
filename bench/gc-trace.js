// @ts-check
/**
 * V8's collector per client credentials token, the issuer against oidc-provider alone, from
 * `node --trace-gc-nvp` (one line per collection: its kind, pause and bytes promoted): what a
 * token costs the collector, which a CPU profile shows only as "(garbage collector)" and
 * `instructions.js` only as a count.
 *
 *   node bench/gc-trace.js [--seconds N] [--warm N] [--connections N] [--semi-space MB] [--rounds N]
 *
 * Both servers run in one process each (the issuer with WEB_CONCURRENCY=1), one after the
 * other, `--rounds` times (default 1), on the same cores as this load generator (autocannon,
 * `--connections` keep-alive connections, default 16): `--warm` seconds of load (default 3),
 * then `--seconds` measured (default 10), whose trace lines are summed. `--semi-space` passes
 * `--max-semi-space-size` to both servers. Per 1,000 tokens: scavenges and their pauses,
 * mark-compacts and theirs; per token: the bytes promoted to the old generation and the
 * server's CPU (its process, V8's helper threads and libuv's pool included). Needs PostgreSQL at
 * BENCH_DATABASE_URL (a database is created beside it and dropped at the end); takes about a
 * minute per round. Not part of `npm run bench` or CI.
 */
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';

import autocannon from 'autocannon';

import { cpuPerRequest, processGroup, readCpu } from './lib/cpu.js';
import { FORM } from './lib/http.js';
import { parseFlags, positiveFlag } from './lib/flags.js';
import { progress } from './lib/log.js';
import { withOneClient } from './lib/one-client.js';
import { freePort, startChild, stopChild, waitForOk } from './lib/processes.js';
import { AUDIENCE, ISSUER_DIST, here } from './setup.js';

const BARE_ENGINE = path.join(here, 'baselines/bare-engine.js');
const usage = 'usage: node bench/gc-trace.js [--seconds N] [--warm N] [--connections N] [--semi-space MB] [--rounds N]';

function options() {
  const values = parseFlags(usage, { seconds: { type: 'string' }, warm: { type: 'string' }, connections: { type: 'string' }, 'semi-space': { type: 'string' }, rounds: { type: 'string' } });
  /** @param {string | undefined} value @param {number} fallback @param {string} flag */
  const positive = (value, fallback, flag) => positiveFlag(value, fallback, flag, usage, 1024);
  const semiSpace = values['semi-space'] === undefined ? undefined : positive(values['semi-space'], 16, 'semi-space');
  return {
    seconds: positive(values.seconds, 10, 'seconds'),
    warm: positive(values.warm, 3, 'warm'),
    connections: positive(values.connections, 16, 'connections'),
    rounds: positive(values.rounds, 1, 'rounds'),
    nodeArgs: ['--trace-gc-nvp', ...(semiSpace === undefined ? [] : [`--max-semi-space-size=${semiSpace}`])],
  };
}

/**
 * @typedef {object} Collections the trace lines of one window, summed
 * @property {number} scavenges
 * @property {number} scavengeMs
 * @property {number} promotedBytes
 * @property {number} markCompacts
 * @property {number} markCompactMs
 */

/**
 * Sums `--trace-gc-nvp`'s lines: `gc=s` is a scavenge; every other kind (`ms`, `mmc`...) a
 * mark-compact, full or for memory reduction.
 * @param {string} text
 * @returns {Collections}
 */
function sumTrace(text) {
  const sums = { scavenges: 0, scavengeMs: 0, promotedBytes: 0, markCompacts: 0, markCompactMs: 0 };
  for (const line of text.split('\n')) {
    const kind = / gc=(\w+) /u.exec(line)?.[1];
    if (kind === undefined) continue;
    const pause = Number(/ pause=([\d.]+) /u.exec(line)?.[1] ?? '0');
    if (kind === 's') {
      sums.scavenges += 1;
      sums.scavengeMs += pause;
      sums.promotedBytes += Number(/ promoted=(\d+) /u.exec(line)?.[1] ?? '0');
    } else {
      sums.markCompacts += 1;
      sums.markCompactMs += pause;
    }
  }
  return sums;
}

/**
 * @param {import('autocannon').Options} options
 * @returns {Promise<import('autocannon').Result>}
 */
const cannon = (options) => new Promise((resolve, reject) => autocannon(options, (error, result) => (error ? reject(error) : resolve(result))));

/**
 * Starts one server with the trace on, loads it, sums the measured window's trace lines.
 * @param {'issuer' | 'engine'} server
 * @param {ReturnType<typeof options>} opts
 * @param {import('./lib/one-client.js').OneClient} setup
 * @param {number} round
 */
async function traced(server, opts, setup, round) {
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  /** @type {Record<string, string>} */
  const env =
    server === 'issuer'
      ? { ...setup.env, ISSUER: origin, PORT: String(port), WEB_CONCURRENCY: '1' }
      : { PORT: String(port), WORKERS: '1', CLIENT_ID: setup.clientId, CLIENT_SECRET: setup.clientSecret, AUDIENCE };
  const child = startChild(`${server}-${round}`, server === 'issuer' ? path.join(ISSUER_DIST, 'main.js') : BARE_ENGINE, env, setup.dir, opts.nodeArgs);
  try {
    await waitForOk(`${origin}/.well-known/openid-configuration`, child);
    const request = { method: 'POST', path: '/token', headers: { authorization: setup.authorization, 'content-type': FORM }, body: 'grant_type=client_credentials&scope=orders%3Aread' };
    const base = { url: origin, connections: opts.connections, timeout: 10, requests: [request] };
    const warm = await cannon({ ...base, duration: opts.warm });
    if (warm.non2xx > 0) throw new Error(`${server}: ${warm.non2xx} non-2xx answers while warming`);
    const pid = child.process.pid;
    const probes = pid === undefined ? [] : [processGroup('server', pid)];
    const from = statSync(child.logFile).size;
    const cpuBefore = readCpu(probes);
    const result = await cannon({ ...base, duration: opts.seconds });
    const cpu = cpuPerRequest(cpuBefore, readCpu(probes), result.requests.total);
    const trace = readFileSync(child.logFile).subarray(from).toString('utf8');
    return { server, tokens: result.requests.total, perSecond: result.requests.total / opts.seconds, non2xx: result.non2xx, cpuMsPerToken: cpu?.['server'] ?? null, ...sumTrace(trace) };
  } finally {
    await stopChild(child);
  }
}

/** @param {Awaited<ReturnType<typeof traced>>} row */
function line(row) {
  /** @param {number} value */
  const perThousand = (value) => ((value * 1000) / row.tokens).toFixed(1);
  const cpu = row.cpuMsPerToken === null ? 'n/a' : `${(row.cpuMsPerToken * 1000).toFixed(0)} µs`;
  return (
    `  ${row.server.padEnd(6)} ${Math.round(row.perSecond)} tokens/s, CPU ${cpu} per token; per 1,000 tokens: ${perThousand(row.scavenges)} scavenges (${perThousand(row.scavengeMs)} ms of pauses), ` +
    `${perThousand(row.markCompacts)} mark-compacts (${perThousand(row.markCompactMs)} ms); promoted ${Math.round(row.promotedBytes / row.tokens)} bytes per token${row.non2xx > 0 ? `; ${row.non2xx} non-2xx` : ''}`
  );
}

async function main() {
  const opts = options();
  await withOneClient('gc_trace', async (setup) => {
    const lines = [`collections per client credentials token (${opts.connections} connections, ${opts.seconds} s after ${opts.warm} s; node ${opts.nodeArgs.join(' ')})`];
    for (let round = 1; round <= opts.rounds; round += 1) {
      for (const server of /** @type {const} */ (['issuer', 'engine'])) {
        progress(`round ${round}: ${server}`);
        lines.push(line(await traced(server, opts, setup, round)));
      }
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  });
}

main().catch((/** @type {unknown} */ error) => {
  process.stderr.write(`bench/gc-trace: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
