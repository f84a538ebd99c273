// @ts-check
/** Baselines measured inside the bench process itself (while the servers are idle). */
import { generateKeyPairSync, sign } from 'node:crypto';
import { performance } from 'node:perf_hooks';

import argon2 from 'argon2';

/** @param {NodeJS.CpuUsage} usage */
const cpuMs = (usage) => (usage.user + usage.system) / 1000;

/**
 * Raw RS256 signatures per second on one core: `crypto.sign` with an RSA-2048 KeyObject
 * parsed once, over a JWT-sized input, in a tight synchronous loop for `ms`.
 * @param {number} ms
 * @returns {{ opsPerSec: number, ops: number, seconds: number, cpuMsPerOp: number }}
 */
export function rawRs256(ms) {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const input = Buffer.from(`${'e'.repeat(60)}.${'p'.repeat(300)}`);
  for (let i = 0; i < 50; i += 1) sign('sha256', input, privateKey); // warm-up
  let ops = 0;
  const cpuBefore = process.cpuUsage();
  const start = performance.now();
  const end = start + ms;
  let now = start;
  while (now < end) {
    for (let i = 0; i < 20; i += 1) sign('sha256', input, privateKey);
    ops += 20;
    now = performance.now();
  }
  const seconds = (now - start) / 1000;
  return { opsPerSec: ops / seconds, ops, seconds, cpuMsPerOp: cpuMs(process.cpuUsage(cpuBefore)) / ops };
}

/**
 * Raw argon2id verifies per second with `concurrency` verifies in flight (libuv's pool does
 * the work, on as many threads at once as it has), for `ms`.
 * @param {{ memoryKib: number, timeCost: number, parallelism: number }} parameters
 * @param {number} concurrency
 * @param {number} ms
 * @returns {Promise<{ opsPerSec: number, ops: number, seconds: number, p50Ms: number, p99Ms: number, cpuMsPerOp: number }>}
 */
export async function rawArgon2Verify(parameters, concurrency, ms) {
  const password = 'bench-password-1234';
  const hash = await argon2.hash(password, {
    type: argon2.argon2id,
    memoryCost: parameters.memoryKib,
    timeCost: parameters.timeCost,
    parallelism: parameters.parallelism,
  });
  await argon2.verify(hash, password); // warm-up
  /** @type {number[]} */
  const latencies = [];
  // the pool threads' time included: process CPU time counts every thread
  const cpuBefore = process.cpuUsage();
  const start = performance.now();
  const end = start + ms;
  const lane = async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      if (!(await argon2.verify(hash, password))) throw new Error('argon2 baseline: verify returned false');
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  const seconds = (performance.now() - start) / 1000;
  const cpu = cpuMs(process.cpuUsage(cpuBefore));
  latencies.sort((a, b) => a - b);
  const at = (/** @type {number} */ q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return { opsPerSec: latencies.length / seconds, ops: latencies.length, seconds, p50Ms: at(0.5), p99Ms: at(0.99), cpuMsPerOp: cpu / latencies.length };
}

/**
 * `operation` run `width` at a time for `ms` (each lane starts its next one as soon as its last
 * one ends): operations/s and the latency of each.
 * @param {number} ms
 * @param {number} width
 * @param {() => Promise<unknown>} operation
 * @returns {Promise<{ opsPerSec: number, ops: number, seconds: number, p50Ms: number, p99Ms: number }>}
 */
export async function inFlightFor(ms, width, operation) {
  /** @type {number[]} */
  const latencies = [];
  const start = performance.now();
  const end = start + ms;
  const lane = async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      await operation();
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: width }, lane));
  const seconds = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (/** @type {number} */ q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return { opsPerSec: latencies.length / seconds, ops: latencies.length, seconds, p50Ms: at(0.5), p99Ms: at(0.99) };
}
