// @ts-check
/**
 * `npm run bench`: boots the real issuer and orders-api (child processes) against a fresh
 * PostgreSQL database (or PGlite with --embedded), provisions its own clients, API key and
 * user, drives each workload from this process with autocannon over loopback (fixed-rate
 * workloads with bench/lib/paced.js), measures baselines in the same run, prints one table and
 * writes bench/results/latest.json.
 *
 *   node bench/run.js [--quick] [--embedded] [--workers N] [--warmup S] [--only id,id,...] [--profile]
 *
 * setup.js starts (and stops) everything; workloads/index.js is the plan, one row after the
 * other; report.js prints the table and writes the JSON.
 */
import os from 'node:os';
import { parseArgs } from 'node:util';

import { fail, progress } from './lib/log.js';
import { logTail } from './lib/processes.js';
import { finish } from './report.js';
import { openSession, setUp } from './setup.js';
import { select, WORKLOADS } from './workloads/index.js';
import { prepare } from './workloads/prepare.js';

/** Each mode's load shape; --warmup replaces its warm-up. */
const SHAPES = { quick: { connections: 8, seconds: 3, warmupSeconds: 1 }, full: { connections: 16, seconds: 10, warmupSeconds: 2 } };

/** @returns {import('./workloads/measure.js').Options} */
function parseOptions() {
  const { values: flags } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      embedded: { type: 'boolean', default: false },
      workers: { type: 'string' },
      warmup: { type: 'string' },
      only: { type: 'string' },
      profile: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (flags.help) {
    process.stdout.write('usage: node bench/run.js [--quick] [--embedded] [--workers N] [--warmup S] [--only id,id,...] [--profile]\n');
    process.exit(0);
  }
  const quick = flags.quick === true;
  const embedded = flags.embedded === true;
  const workers = flags.workers === undefined ? (embedded ? 1 : os.availableParallelism()) : Number(flags.workers);
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) fail(`--workers must be a whole number from 1 to 64 (got "${flags.workers}")`);
  if (embedded && workers > 1) fail('--workers above 1 needs PostgreSQL (the embedded database has a single owner process)');
  const shape = { ...SHAPES[quick ? 'quick' : 'full'] };
  if (flags.warmup !== undefined) {
    const warmup = Number(flags.warmup);
    if (!Number.isInteger(warmup) || warmup < 1 || warmup > 60) fail(`--warmup must be a whole number of seconds from 1 to 60 (got "${flags.warmup}")`);
    shape.warmupSeconds = warmup;
  }
  const { only, added } = select(flags.only);
  if (added.length > 0) progress(`--only: also running ${added.join(', ')}`);
  return {
    quick,
    embedded,
    workers,
    profile: flags.profile === true,
    selected: (rowId) => only === null || only.has(rowId),
    manyClients: quick ? 1_000 : 10_000,
    shape,
  };
}

/**
 * The bench's own failures are one line; anything else (a bug) gets its stack. fetch's "fetch
 * failed" says why only in its cause (ECONNREFUSED, ECONNRESET...).
 * @param {unknown} error
 */
function describe(error) {
  const text = error instanceof Error ? (error.constructor === Error ? error.message : (error.stack ?? error.message)) : String(error);
  const cause = error instanceof Error && error.cause !== undefined ? `\ncaused by: ${error.cause instanceof Error ? error.cause.message : String(error.cause)}` : '';
  return `${text}${cause}`;
}

const options = parseOptions();
// the watchdog's allowance for a longer warm-up: twice the added seconds for every row
const addedWarmupSeconds = Math.max(0, options.shape.warmupSeconds - SHAPES[options.quick ? 'quick' : 'full'].warmupSeconds);
const session = openSession(options.quick, addedWarmupSeconds * 2 * WORKLOADS.length * 1000);
let exitCode = 0;
try {
  const context = await prepare(await setUp(session, options), options);
  for (const workload of WORKLOADS) {
    if (options.selected(workload.id)) await workload.run(context);
  }
  finish(context);
} catch (error) {
  exitCode = 1;
  process.stderr.write(`bench: ${describe(error)}\n`);
  for (const child of session.children) process.stderr.write(`--- last lines of ${child.name}'s log\n${logTail(child)}\n`);
} finally {
  session.disarm();
  await session.cleanUp();
}
process.exit(exitCode);
