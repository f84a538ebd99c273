// @ts-check
/**
 * The client credentials grant (RFC 6749, section 4.4) of the machine client: `client_credentials`
 * against the issuer with every worker (its keys in KEYS_DIR), `client_credentials_1_worker`
 * against a second issuer with one worker, and `client_credentials_db_keys` against a second
 * issuer with every worker and KEY_STORE=database. Each second issuer runs on the same database
 * and data directory, started for its row and stopped after it.
 */
import { randomBytes } from 'node:crypto';

import { withSecondIssuer } from '../setup.js';
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
      await withSecondIssuer(context.stack, { name: 'issuer-1-worker', workers: 1, description: '1 worker' }, async (tokenUrl) => {
        await check(context.preflight, oneWorker.id, tokenUrl, context.requests.cc);
        await measureHttp(context, oneWorker, ccWorkload(context, tokenUrl), { issuerWorkers: 1, comparedWithWorkers: workers });
      });
    }
  },
};

/** The bound on what the database key store may add to client credentials CPU per request. */
export const DB_KEYS_CPU_TARGET = 0.02;

/** @type {import('./measure.js').RowSpec} */
export const databaseKeys = {
  id: 'client_credentials_db_keys',
  label: 'client credentials POST /token, KEY_STORE=database (vs files)',
  baseline: 'client_credentials',
  needs: 'client_credentials',
  run: async (context) => {
    const { embedded, workers } = context.options;
    if (embedded) {
      skip(context, databaseKeys.id, 'the embedded database has a single owner process, so no second issuer (with the database key store) can run beside the first');
      return;
    }
    // a fresh 256-bit key for this run only, passed in the child's environment and never printed;
    // the signing_keys table starts empty (the main issuer keeps its keys in KEYS_DIR), so this
    // issuer creates its own first key there
    const env = { KEY_STORE: 'database', KEYS_ENCRYPTION_KEY: randomBytes(32).toString('base64url') };
    const description = `${workers} worker${workers === 1 ? '' : 's'}, KEY_STORE=database`;
    await withSecondIssuer(context.stack, { name: 'issuer-db-keys', workers, description, env }, async (tokenUrl) => {
      await check(context.preflight, databaseKeys.id, tokenUrl, context.requests.cc);
      await measureHttp(context, databaseKeys, ccWorkload(context, tokenUrl), { issuerWorkers: workers, keyStore: 'database', comparedWithKeyStore: 'files' });
    });
  },
};
