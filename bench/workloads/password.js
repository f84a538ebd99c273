// @ts-check
/**
 * The password grant (the right password every time, round-robin over many users, so the
 * brute-force throttle, which counts failures and lets an account have only a few attempts in
 * flight, never engages) and its floor: raw argon2id verifies with the issuer's
 * parameters, in a process of their own (baselines/argon2-capacity.js) whose libuv pool has one
 * thread per core: the machine's best argon2id rate.
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import { processGroup, readThreadCpu } from '../lib/cpu.js';
import { progress } from '../lib/log.js';
import { getFromEveryWorker } from '../lib/prime.js';
import { runNode } from '../lib/processes.js';
import { ARGON2 } from '../setup.js';
import { addInProcessRow, measureHttp } from './measure.js';

/** Verifies in flight in the raw argon2id baseline. */
const ARGON2_CONCURRENCY = 8;
const ARGON2_CAPACITY = fileURLToPath(new URL('../baselines/argon2-capacity.js', import.meta.url));

/** @type {import('./measure.js').RowSpec} */
export const rawArgon2id = {
  id: 'raw_argon2id',
  label: () => `baseline: raw argon2id verify, pool of ${os.availableParallelism()}, ${ARGON2_CONCURRENCY} in flight (ops/s)`,
  baseline: null,
  run: async (context) => {
    const cores = os.availableParallelism();
    progress(`raw argon2id verifies (m=${ARGON2.memoryKib}, t=${ARGON2.timeCost}, p=${ARGON2.parallelism}), libuv pool of ${cores}, ${ARGON2_CONCURRENCY} in flight, 3 s`);
    const output = await runNode(ARGON2_CAPACITY, [ARGON2.memoryKib, ARGON2.timeCost, ARGON2.parallelism, ARGON2_CONCURRENCY, 3000].map(String), { UV_THREADPOOL_SIZE: String(cores) });
    const argon = /** @type {{ opsPerSec: number, ops: number, seconds: number, p50Ms: number, p99Ms: number, cpuMsPerOp: number, uvThreadpoolSize: string }} */ (JSON.parse(output));
    addInProcessRow(context, rawArgon2id, argon, { ...argon, parameters: ARGON2, concurrency: ARGON2_CONCURRENCY });
  },
};

/**
 * A sample's value in Prometheus text (the first line of that name without labels), or undefined.
 * @param {string} text
 * @param {string} name
 */
function sample(text, name) {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

/**
 * Every issuer worker's argon2id time so far and slots (its metrics: sigil_password_hashing_*).
 * @param {import('./measure.js').Context} context
 */
async function hashingOfEveryWorker(context) {
  const answers = await getFromEveryWorker(`${context.stack.urls.issuer}/metrics`, context.options.workers);
  return answers.map((text) => ({ seconds: sample(text, 'sigil_password_hashing_seconds_total') ?? 0, slots: sample(text, 'sigil_password_hashing_slots') ?? 0 }));
}

/**
 * The issuer's CPU per sign-in (over the warm-up and the run, as the utilisation) split between
 * its main threads (HTTP, the engine, the statements' client side) and its other threads
 * (argon2id on libuv's pool, the signatures, V8's helpers), and the CPU ratio the row would have
 * if its main threads cost nothing (`ratioWithoutMainThreads`: the raw verify's CPU over the
 * other threads' and PostgreSQL's per sign-in): what argon2id beside everything else leaves.
 * @param {import('./measure.js').Row} row
 * @param {{ main: number, other: number } | null} before
 * @param {{ main: number, other: number } | null} after
 * @param {import('./measure.js').Row | undefined} raw
 */
function threadsPerSignIn(row, before, after, raw) {
  const details = /** @type {{ total?: number, warmup?: { statusCodes?: Record<string, number> }, cpuMsPerRequest?: Record<string, number> | null }} */ (row.details ?? {});
  const requests = (details.total ?? 0) + Object.values(details.warmup?.statusCodes ?? {}).reduce((sum, count) => sum + count, 0);
  if (before === null || after === null || requests === 0) return {};
  const issuerThreadsMsPerSignIn = { main: (after.main - before.main) / requests, other: (after.other - before.other) / requests };
  const postgres = details.cpuMsPerRequest?.['postgres'] ?? 0;
  const verify = raw?.cpuMsPerRequest ?? null;
  return { issuerThreadsMsPerSignIn, ratioWithoutMainThreads: verify === null ? null : verify / (issuerThreadsMsPerSignIn.other + postgres) };
}

/** @type {import('./measure.js').RowSpec} */
export const password = {
  id: 'password',
  label: 'password grant POST /token',
  baseline: 'raw_argon2id',
  run: async (context) => {
    // round-robin over the sign-in users (prepare.js): many people at once, as the throttle expects
    const bodies = context.requests.passwordBodies;
    let next = 0;
    const workload = {
      url: context.stack.endpoints.token,
      ...context.requests.password,
      setupRequest: (/** @type {import('autocannon').Request} */ request) => {
        const body = bodies[next % bodies.length] ?? context.requests.password.body;
        next += 1;
        return { ...request, body };
      },
    };
    // the argon2id slots' utilisation over the warm-up and the run: time computing / (slots × wall time)
    const before = await hashingOfEveryWorker(context);
    const issuer = context.stack.servers.get(context.stack.urls.issuer)?.process.pid;
    const probe = issuer === undefined ? undefined : processGroup('issuer', issuer);
    const threadsBefore = probe === undefined ? null : readThreadCpu(probe);
    const started = performance.now();
    await measureHttp(context, password, workload);
    const seconds = (performance.now() - started) / 1000;
    const threadsAfter = probe === undefined ? null : readThreadCpu(probe);
    const after = await hashingOfEveryWorker(context);
    const slots = after.reduce((sum, worker) => sum + worker.slots, 0);
    const busy = after.reduce((sum, worker) => sum + worker.seconds, 0) - before.reduce((sum, worker) => sum + worker.seconds, 0);
    const utilisation = slots > 0 ? busy / (slots * seconds) : null;
    const row = context.rows.find((candidate) => candidate.id === password.id);
    if (row !== undefined) {
      const threads = threadsPerSignIn(row, threadsBefore, threadsAfter, context.rows.find((candidate) => candidate.id === rawArgon2id.id));
      row.details = { ...row.details, argon2idSlots: slots, argon2idBusySeconds: busy, argon2idUtilisation: utilisation, utilisationSeconds: seconds, ...threads };
      const split = threads.issuerThreadsMsPerSignIn;
      if (split !== undefined) {
        const without = threads.ratioWithoutMainThreads;
        progress(`  issuer CPU per sign-in: main threads ${split.main.toFixed(2)} ms, other threads (argon2id, signatures, V8) ${split.other.toFixed(2)} ms${without === null || without === undefined ? '' : `; CPU ratio with free main threads: ${without.toFixed(2)}`}`);
      }
    }
    progress(`  argon2id slots busy ${utilisation === null ? '?' : (utilisation * 100).toFixed(0)} % of the time (${slots} slot(s) over ${context.options.workers} worker(s))`);
  },
};
