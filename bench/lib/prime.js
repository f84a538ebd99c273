// @ts-check
/**
 * Sends a list of requests to every worker of a node:cluster server, so that a measured run
 * afterwards finds every worker's caches warm.
 *
 * Which worker serves a request is the cluster primary's choice, made once per connection:
 * on Linux it hands each new connection to the worker that has been idle longest (round
 * robin). Connections opened one after the other, each only once the previous one has been
 * answered, therefore alternate over the workers: connection i is served by worker i mod N.
 * Each connection here belongs to an agent with one keep-alive socket, so everything sent
 * through it reaches the same worker.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';

/**
 * @typedef {object} PrimeRequest
 * @property {string} method
 * @property {Record<string, string>} headers
 * @property {string} [body]
 */

/**
 * @param {http.Agent} agent
 * @param {URL} url
 * @param {PrimeRequest} request
 * @param {boolean} [keepBody] collect the answer's body (otherwise it is read and dropped)
 * @returns {Promise<{ status: number, body: string }>}
 */
function send(agent, url, request, keepBody = false) {
  return new Promise((resolve, reject) => {
    const outgoing = http.request(url, { agent, method: request.method, headers: request.headers, timeout: 10_000 }, (response) => {
      /** @type {Buffer[]} */
      const chunks = [];
      response.on('data', (chunk) => {
        if (keepBody) chunks.push(chunk);
      });
      response.once('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      response.once('error', reject);
    });
    outgoing.once('timeout', () => outgoing.destroy(new Error(`no answer from ${url.href} within 10 s`)));
    outgoing.once('error', reject);
    outgoing.end(request.body);
  });
}

/**
 * Sends every one of `requests` once to each of `workers` workers behind `url`, over
 * `perWorker` connections per worker (each connection one request at a time).
 * @param {string} url
 * @param {number} workers
 * @param {number} perWorker
 * @param {PrimeRequest[]} requests
 * @returns {Promise<{ requests: number, seconds: number, reqPerSec: number, non2xx: number }>}
 */
export async function primeEveryWorker(url, workers, perWorker, requests) {
  const target = new URL(url);
  const first = requests[0];
  if (first === undefined) return { requests: 0, seconds: 0, reqPerSec: 0, non2xx: 0 };
  /** @type {http.Agent[]} */
  const agents = [];
  let non2xx = 0;
  const count = (/** @type {number} */ status) => {
    if (status < 200 || status > 299) non2xx += 1;
  };
  const started = performance.now();
  try {
    // one connection at a time, each answered before the next opens: agent i is served by worker i mod workers
    for (let i = 0; i < workers * perWorker; i += 1) {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      agents.push(agent);
      count((await send(agent, target, first)).status);
    }
    // request r goes, for each worker w, to the agent of worker w in lane r mod perWorker
    await Promise.all(
      agents.map(async (agent, i) => {
        for (let r = Math.floor(i / workers); r < requests.length; r += perWorker) {
          const request = requests[r];
          // the opening request already sent the first one through this agent
          if (request !== undefined && !(r === 0 && i < workers)) count((await send(agent, target, request)).status);
        }
      }),
    );
  } finally {
    for (const agent of agents) agent.destroy();
  }
  const seconds = (performance.now() - started) / 1000;
  const total = requests.length * workers + Math.max(0, workers * perWorker - workers);
  return { requests: total, seconds, reqPerSec: total / seconds, non2xx };
}

/**
 * One `GET` of `url` through each of `workers` connections opened one after the other (each
 * answered before the next opens), so that each reaches another worker of a node:cluster server
 * (see the top of this file), on a server otherwise idle: every worker's answer, in no
 * particular order.
 * @param {string} url
 * @param {number} workers
 * @returns {Promise<string[]>}
 */
export async function getFromEveryWorker(url, workers) {
  const target = new URL(url);
  /** @type {http.Agent[]} */
  const agents = [];
  /** @type {string[]} */
  const bodies = [];
  try {
    for (let i = 0; i < workers; i += 1) {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      agents.push(agent);
      bodies.push((await send(agent, target, { method: 'GET', headers: {} }, true)).body);
    }
  } finally {
    for (const agent of agents) agent.destroy();
  }
  return bodies;
}
