// @ts-check
/**
 * Many clients: the client credentials grant spread over many distinct clients
 * (`client_credentials_10k`: 10,000, or 1,000 with --quick) against the same code path with a
 * list of one (`client_credentials_1`, the first of those clients), so that the ratio shows only
 * what distinct clients cost. setup.js provisions them over the issuer's HTTP admin API
 * (`POST /admin/v1/clients`).
 */
import { asRecord, FORM } from '../lib/http.js';
import { progress } from '../lib/log.js';
import { primeEveryWorker } from '../lib/prime.js';
import { measureHttp } from './measure.js';

const ROTATION = 'round-robin, one client per request';

/** @param {import('./measure.js').Options} options */
const manyLabel = (options) => `${options.manyClients.toLocaleString('en-US')} clients${options.quick ? ' (--quick: not 10,000)' : ''}`;

/**
 * Client credentials spread over `authorizations` round-robin, one per request (autocannon's
 * setupRequest); the 1-client baseline goes through the same code with a list of one.
 * @param {import('./measure.js').Context} context
 * @param {string[]} authorizations
 * @param {string} [tokenUrl] another issuer's token endpoint (default: the stack's)
 * @returns {import('./measure.js').Workload}
 */
export function ccOver(context, authorizations, tokenUrl = context.stack.endpoints.token) {
  let next = 0;
  return {
    url: tokenUrl,
    method: 'POST',
    headers: { 'content-type': FORM },
    body: context.requests.ccBody,
    setupRequest: (request) => {
      const authorization = authorizations[next % authorizations.length] ?? '';
      next += 1;
      return { ...request, headers: { ...request.headers, authorization } };
    },
  };
}

/** @type {import('./measure.js').RowSpec} */
export const oneClient = {
  id: 'client_credentials_1',
  label: 'client credentials, 1 client (round-robin path)',
  baseline: null,
  run: async (context) => {
    const oneOfMany = context.requests.manyAuthorizations.slice(0, 1);
    await measureHttp(context, oneClient, ccOver(context, oneOfMany), { clients: oneOfMany.length, rotation: ROTATION });
  },
};

/**
 * The first request of each client in a worker reads it from the database and has the engine
 * validate it, and every worker keeps its own cache; so before the measured run every worker
 * sees every client once (timed on its own: details.firstUse), and the run shows the steady
 * state with every client known (machine clients come back every token lifetime).
 * @param {import('./measure.js').Context} context
 * @param {string[]} authorizations
 */
async function firstUseInEveryWorker(context, authorizations) {
  const { workers, shape } = context.options;
  const perWorker = Math.max(1, Math.floor(shape.connections / workers));
  progress(`first request of each of the ${manyLabel(context.options)} in each of the issuer's ${workers} worker(s), ${perWorker} connection(s) per worker`);
  const requests = authorizations.map((authorization) => ({ method: 'POST', headers: { authorization, 'content-type': FORM }, body: context.requests.ccBody }));
  const primed = await primeEveryWorker(context.stack.endpoints.token, workers, perWorker, requests);
  progress(`  ${Math.round(primed.reqPerSec).toLocaleString('en-US')} req/s for first uses, non-2xx ${primed.non2xx}`);
  return { ...primed, workers };
}

/** @type {import('./measure.js').RowSpec} */
export const manyClients = {
  id: 'client_credentials_10k',
  label: (options) => `client credentials over ${manyLabel(options)}`,
  baseline: 'client_credentials_1',
  needs: 'client_credentials_1',
  run: async (context) => {
    const many = context.requests.manyAuthorizations;
    /** @type {{ requests: number, seconds: number, reqPerSec: number, non2xx: number, workers: number } | null} */
    const firstUse = many.length > 0 ? await firstUseInEveryWorker(context, many) : null;
    await measureHttp(context, manyClients, ccOver(context, many), {
      clients: many.length,
      quickMode: context.options.quick,
      rotation: ROTATION,
      provisioning: context.stack.provisioning,
      firstUse,
    });
    const row = context.rows.find((other) => other.id === 'client_credentials_10k');
    if (row !== undefined && many.length > 0) {
      // how often each client came round (warm-up included): about once means nearly every request used a client not seen before
      const warmupTotal = Object.values(asRecord(asRecord(row.details?.['warmup'])['statusCodes'])).reduce((/** @type {number} */ sum, count) => sum + Number(count), 0);
      row.details = { ...row.details, requestsPerClient: (Number(row.details?.['total'] ?? 0) + warmupTotal) / many.length };
    }
  },
};
