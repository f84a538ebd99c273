// @ts-check
/** Drives one workload with autocannon (in this process; the servers are child processes). */
import autocannon from 'autocannon';

import { cpuPerRequest, readCpu } from './cpu.js';

/**
 * @typedef {object} Workload
 * @property {string} url 127.0.0.1 only
 * @property {string} [method]
 * @property {Record<string, string>} [headers]
 * @property {string} [body]
 * @property {import('autocannon').Request['setupRequest']} [setupRequest]
 * @property {(status: number, body: string) => void} [onResponse]
 * @property {import('./cpu.js').CpuProbe[]} [cpu] processes whose CPU time per request is reported (the server, the database)
 * @property {import('./cpu.js').CpuProbe[]} [timeline] processes whose CPU the fixed-rate generator reads every quarter second (every server of the bench, the database): who was busy in the worst windows
 */

/**
 * @typedef {object} Measured
 * @property {number} reqPerSec mean of autocannon's per-second samples
 * @property {number} total completed requests in the measured run
 * @property {number} seconds
 * @property {number} p50Ms
 * @property {number} p90Ms
 * @property {number} p99Ms
 * @property {number} maxMs
 * @property {number} non2xx
 * @property {number} errors connection errors, timeouts included
 * @property {number} timeouts
 * @property {Record<string, number>} statusCodes
 * @property {{ status: number, body: string }[]} non2xxSamples first few non-2xx answers, verbatim
 * @property {{ non2xx: number, errors: number, statusCodes: Record<string, number> }} warmup
 * @property {Record<string, number> | null} cpuMsPerRequest CPU ms per completed request of each probe and of the load generator, over the measured run (null without /proc)
 */

/**
 * @param {import('autocannon').Options} options
 * @returns {Promise<import('autocannon').Result>}
 */
function cannon(options) {
  return new Promise((resolve, reject) => {
    autocannon(options, (error, result) => (error ? reject(error) : resolve(result)));
  });
}

/** @param {import('autocannon').Result} result */
function statusCodes(result) {
  return Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([code, { count }]) => [code, Number(count)]));
}

/**
 * A warm-up run (its figures kept apart, its non-2xx still reported), then the measured run.
 * @param {Workload} workload
 * @param {{ connections: number, seconds: number, warmupSeconds: number }} shape
 * @returns {Promise<Measured>}
 */
export async function measure(workload, shape) {
  const target = new URL(workload.url);
  if (target.hostname !== '127.0.0.1') throw new Error(`bench targets 127.0.0.1 only, not ${target.hostname}`);
  /** @type {{ status: number, body: string }[]} */
  const samples = [];
  /** @type {import('autocannon').Request} */
  const request = {
    method: workload.method ?? 'GET',
    path: `${target.pathname}${target.search}`,
    headers: workload.headers ?? {},
    ...(workload.body === undefined ? {} : { body: workload.body }),
    ...(workload.setupRequest === undefined ? {} : { setupRequest: workload.setupRequest }),
    onResponse: (status, body) => {
      if ((status < 200 || status > 299) && samples.length < 3) samples.push({ status, body: body.slice(0, 500) });
      workload.onResponse?.(status, body);
    },
  };
  const base = { url: target.origin, connections: shape.connections, timeout: 10, requests: [request] };
  const warm = await cannon({ ...base, duration: shape.warmupSeconds });
  const cpuBefore = readCpu(workload.cpu ?? []);
  const result = await cannon({ ...base, duration: shape.seconds });
  const cpuMsPerRequest = cpuPerRequest(cpuBefore, readCpu(workload.cpu ?? []), result.requests.total);
  return {
    reqPerSec: result.requests.average,
    total: result.requests.total,
    seconds: result.duration,
    p50Ms: result.latency.p50,
    p90Ms: result.latency.p90,
    p99Ms: result.latency.p99,
    maxMs: result.latency.max,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes: statusCodes(result),
    non2xxSamples: samples,
    warmup: { non2xx: warm.non2xx, errors: warm.errors, statusCodes: statusCodes(warm) },
    cpuMsPerRequest,
  };
}
