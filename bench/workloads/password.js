// @ts-check
/**
 * The password grant (the right password every time, round-robin over many users, so the
 * brute-force throttle, which counts failures and lets an account have only a few attempts in
 * flight, never engages) and its floor: raw argon2id verifies with the issuer's
 * parameters, in a process of their own (baselines/argon2-capacity.js) whose libuv pool has one
 * thread per core: the machine's best argon2id rate.
 */
import os from 'node:os';
import { fileURLToPath } from 'node:url';

import { progress } from '../lib/log.js';
import { runNode } from '../lib/processes.js';
import { ARGON2 } from '../setup.js';
import { addInProcessRow, httpRow } from './measure.js';

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

export const password = httpRow({
  id: 'password',
  label: 'password grant POST /token',
  baseline: 'raw_argon2id',
  // round-robin over the sign-in users (prepare.js): many people at once, as the throttle expects
  workload: (context) => {
    const bodies = context.requests.passwordBodies;
    let next = 0;
    return {
      url: context.stack.endpoints.token,
      ...context.requests.password,
      setupRequest: (request) => {
        const body = bodies[next % bodies.length] ?? context.requests.password.body;
        next += 1;
        return { ...request, body };
      },
    };
  },
});
