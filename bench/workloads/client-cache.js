// @ts-check
/**
 * The client cache at scale, against the issuer in one process (setup.js `withCacheIssuer`):
 * `client_credentials_100k` spreads the client credentials grant over 100,000 clients (10,000
 * with --quick), `client_credentials_100k_1` sends the same requests with a list of one of them.
 * The clients are created with the `clients.create` admin command in that process. Before the
 * measured runs every client makes its first request (its row read, the engine's validation),
 * and V8's used heap after a full collection is read before the first use, after the first
 * 10,000 (1,000) and after all of them: the heap per cached client (`details.heapPerClient`).
 */
import { FORM } from '../lib/http.js';
import { progress } from '../lib/log.js';
import { primeEveryWorker } from '../lib/prime.js';
import { withCacheIssuer } from '../setup.js';
import { ccOver } from './many-clients.js';
import { measureHttp, skip } from './measure.js';

/** @param {boolean} quick */
const counts = (quick) => (quick ? { first: 1000, all: 10_000 } : { first: 10_000, all: 100_000 });
/** At most this many clients per provisioning request to the control port (each answered within its 10 s). */
const CHUNK = 2000;
const CONNECTIONS = 8;

/**
 * @param {import('../setup.js').CacheIssuer} issuer
 * @param {number} count
 */
async function provisionInChunks(issuer, count) {
  /** @type {string[]} */
  const authorizations = [];
  let ms = 0;
  while (authorizations.length < count) {
    const made = await issuer.provision(Math.min(CHUNK, count - authorizations.length));
    authorizations.push(...made.authorizations);
    ms += made.ms;
  }
  return { authorizations, ms };
}

/**
 * @param {import('./measure.js').Context} context
 * @param {string} tokenUrl
 * @param {string[]} authorizations
 */
async function firstUses(context, tokenUrl, authorizations) {
  const requests = authorizations.map((authorization) => ({ method: 'POST', headers: { authorization, 'content-type': FORM }, body: context.requests.ccBody }));
  return primeEveryWorker(tokenUrl, 1, CONNECTIONS, requests);
}

/** @param {import('./measure.js').Options} options */
const allLabel = (options) => `${counts(options.quick).all.toLocaleString('en-US')} clients${options.quick ? ' (--quick: not 100,000)' : ''}`;

/**
 * The baseline row, measured by {@link cacheManyClients}'s run against the same process (not
 * in the plan of its own: `--only client_credentials_100k` runs both).
 * @type {import('./measure.js').RowSpec}
 */
const cacheOneClient = {
  id: 'client_credentials_100k_1',
  label: 'client credentials, 1 client, issuer in 1 process (round-robin path)',
  baseline: null,
  run: async () => undefined,
};

/** @type {import('./measure.js').RowSpec} */
export const cacheManyClients = {
  id: 'client_credentials_100k',
  label: (options) => `client credentials over ${allLabel(options)}, issuer in 1 process`,
  baseline: 'client_credentials_100k_1',
  run: async (context) => {
    if (context.options.embedded) {
      skip(context, cacheManyClients.id, 'the embedded database has a single owner process, so no second issuer can run beside the first');
      return;
    }
    const { first, all } = counts(context.options.quick);
    await withCacheIssuer(context.stack, all, async (issuer) => {
      progress(`creating ${all.toLocaleString('en-US')} clients with the clients.create admin command in that process`);
      const provisioned = await provisionInChunks(issuer, all);
      progress(`  ${provisioned.authorizations.length.toLocaleString('en-US')} clients in ${(provisioned.ms / 1000).toFixed(1)} s (${Math.round((all / provisioned.ms) * 1000)} clients/s)`);
      const { authorizations } = provisioned;
      // the token path warm with one client, then the heap with that one client cached
      await firstUses(context, issuer.tokenUrl, Array.from({ length: 400 }, () => authorizations[0] ?? ''));
      const heapOne = await issuer.heapUsed();
      const early = await firstUses(context, issuer.tokenUrl, authorizations.slice(1, first));
      const heapFirst = await issuer.heapUsed();
      const late = await firstUses(context, issuer.tokenUrl, authorizations.slice(first));
      const heapAll = await issuer.heapUsed();
      const perClient = (/** @type {number} */ heap, /** @type {number} */ clients) => Math.round((heap - heapOne) / (clients - 1));
      const heapPerClient = { [String(first)]: perClient(heapFirst, first), [String(all)]: perClient(heapAll, all), heapWithOneClientBytes: heapOne, heapWithAllBytes: heapAll };
      const firstUse = { requests: early.requests + late.requests, seconds: early.seconds + late.seconds, non2xx: early.non2xx + late.non2xx };
      progress(`  first uses ${Math.round(firstUse.requests / firstUse.seconds).toLocaleString('en-US')} req/s, non-2xx ${firstUse.non2xx}; heap per cached client ${heapPerClient[String(first)]} B at ${first.toLocaleString('en-US')}, ${heapPerClient[String(all)]} B at ${all.toLocaleString('en-US')}`);
      await measureHttp(context, cacheOneClient, ccOver(context, authorizations.slice(0, 1), issuer.tokenUrl), { clients: 1, issuerProcesses: 1 });
      await measureHttp(context, cacheManyClients, ccOver(context, authorizations, issuer.tokenUrl), {
        clients: all,
        issuerProcesses: 1,
        provisioning: { path: "runAdminCommand('clients.create') in the issuer's process", ms: provisioned.ms, clientsPerSec: (all / provisioned.ms) * 1000 },
        firstUse,
        heapPerClient,
      });
    });
  },
};
