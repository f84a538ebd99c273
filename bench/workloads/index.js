// @ts-check
/**
 * The plan: every row, in the order they run (and stand in the table and in latest.json), and
 * the rows --only selects.
 */
import { fail } from '../lib/log.js';
import { adminCreateClients, adminCreateClientsCommand } from './admin-clients.js';
import { clientCredentialsAt80, guardedOrdersAt80 } from './at-80.js';
import { cacheManyClients } from './client-cache.js';
import { clientCredentials, databaseKeys, oneWorker } from './client-credentials.js';
import { guardedOrdersDpop } from './dpop.js';
import { engineToken, minimalToken, rawRs256 } from './floors.js';
import { manyClients, oneClient } from './many-clients.js';
import { jwks, discovery } from './metadata.js';
import { apiKeyOrders, guardedOrders, minimalOrders, unguardedOrders } from './orders.js';
import { password, rawArgon2id } from './password.js';
import { clientCredentialsPrivateKeyJwt } from './private-key-jwt.js';
import { refresh } from './refresh.js';
import { signInStatements } from './sign-in-statements.js';
import { guardedOrdersFeed, guardedOrdersNoFeed } from './revocation-feed.js';
import { tokenExchange } from './token-exchange.js';

/** @type {import('./measure.js').RowSpec[]} */
export const WORKLOADS = [
  rawRs256,
  minimalToken,
  engineToken,
  clientCredentials,
  clientCredentialsPrivateKeyJwt,
  oneClient,
  manyClients,
  oneWorker,
  databaseKeys,
  clientCredentialsAt80,
  minimalOrders,
  unguardedOrders,
  guardedOrders,
  guardedOrdersDpop,
  guardedOrdersAt80,
  guardedOrdersNoFeed,
  guardedOrdersFeed,
  apiKeyOrders,
  jwks,
  discovery,
  refresh,
  rawArgon2id,
  password,
  signInStatements,
  adminCreateClientsCommand,
  adminCreateClients,
  // late: its 100,000 new rows (and PostgreSQL's work after them) must not land in other rows' runs
  cacheManyClients,
  // last: it registers a client (a service's own, declaring orders:read as before)
  tokenExchange,
];

/**
 * The rows `--only` names (comma-separated ids), with every row a named row needs added; an
 * unknown id, or none at all, stops the bench before it starts.
 * @param {string | undefined} list --only's value; every row when absent
 * @returns {{ only: Set<string> | null, added: string[] }} `added`: the rows --only did not name but a named row needs, and for which
 */
export function select(list) {
  if (list === undefined) return { only: null, added: [] };
  const only = new Set(list.split(',').map((name) => name.trim()).filter((name) => name !== ''));
  const ids = WORKLOADS.map((workload) => workload.id);
  const unknown = [...only].filter((name) => !ids.includes(name));
  if (unknown.length > 0) fail(`--only: unknown workload id(s) ${unknown.join(', ')}; known: ${ids.join(', ')}`);
  if (only.size === 0) fail('--only needs at least one workload id');
  /** @type {string[]} */
  const added = [];
  for (const name of [...only]) {
    const needed = WORKLOADS.find((workload) => workload.id === name)?.needs;
    if (needed !== undefined && !only.has(needed)) {
      only.add(needed);
      added.push(`${needed} (for ${name})`);
    }
  }
  return { only, added };
}
