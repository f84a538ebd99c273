// @ts-check
/**
 * The client credentials grant (RFC 6749, section 4.4) of the machine client: `client_credentials`
 * against the issuer with every worker, and `client_credentials_1_worker` against a second
 * issuer with one worker on the same database, keys and data directory, started for that row
 * and stopped after it.
 */
import { withOneWorkerIssuer } from '../setup.js';
import { check, httpRow, measureHttp, skip } from './measure.js';

/**
 * The machine client's client credentials request, to the issuer's token endpoint or `tokenUrl`.
 * @param {import('./measure.js').Context} context
 * @param {string} [tokenUrl]
 * @returns {import('./measure.js').Workload}
 */
export const ccWorkload = (context, tokenUrl = context.stack.endpoints.token) => ({ url: tokenUrl, ...context.requests.cc });

export const clientCredentials = httpRow({
  id: 'client_credentials',
  label: 'client credentials POST /token',
  baseline: 'minimal_token',
  workload: (context) => ccWorkload(context),
});

/** @type {import('./measure.js').RowSpec} */
export const oneWorker = {
  id: 'client_credentials_1_worker',
  label: (options) => `client credentials POST /token, issuer 1 worker (vs ${options.workers})`,
  baseline: 'client_credentials',
  needs: 'client_credentials',
  run: async (context) => {
    const { embedded, workers } = context.options;
    if (embedded) skip(context, oneWorker.id, 'the embedded database has a single owner process, so no second issuer can run beside the first');
    else if (workers === 1) skip(context, oneWorker.id, 'the issuer already runs 1 worker: the client credentials row is the 1-worker figure');
    else {
      await withOneWorkerIssuer(context.stack, async (tokenUrl) => {
        await check(context.preflight, oneWorker.id, tokenUrl, context.requests.cc);
        await measureHttp(context, oneWorker, ccWorkload(context, tokenUrl), { issuerWorkers: 1, comparedWithWorkers: workers });
      });
    }
  },
};
