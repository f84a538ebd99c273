// @ts-check
/**
 * The floors any token endpoint pays, for the token rows to be compared with: raw RS256
 * signatures on one core (in the bench process), the minimal token endpoint
 * (baselines/minimal-token.js) and the engine alone (baselines/bare-engine.js: oidc-provider
 * with its in-memory adapter, one static client, the same grant, resource and RS256 JWT).
 */
import { rawRs256 as signForTwoSeconds } from '../lib/inprocess.js';
import { progress } from '../lib/log.js';
import { addInProcessRow, httpRow } from './measure.js';

/** @type {import('./measure.js').RowSpec} */
export const rawRs256 = {
  id: 'raw_rs256',
  label: 'baseline: raw RS256 sign, 1 core (ops/s)',
  baseline: null,
  run: async (context) => {
    progress('raw RS256 signatures, one core, 2 s');
    const rs256 = signForTwoSeconds(2000);
    addInProcessRow(context, rawRs256, rs256, rs256);
  },
};

export const minimalToken = httpRow({
  id: 'minimal_token',
  label: 'baseline: minimal token endpoint',
  baseline: null,
  workload: (context) => ({ url: `${context.stack.urls.minimal}/token`, ...context.requests.minimal }),
});

/** The machine client's own id and secret, sent to the engine alone (a static client of its configuration). */
export const engineToken = httpRow({
  id: 'engine_token',
  label: 'baseline: oidc-provider alone, client credentials',
  baseline: 'minimal_token',
  workload: (context) => ({ url: `${context.stack.urls.engine}/token`, ...context.requests.cc }),
});
