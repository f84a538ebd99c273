// @ts-check
/**
 * The set-up of the one-server measurements (instructions.js, gc-trace.js): a database of their
 * own beside BENCH_DATABASE_URL's, migrated with the `sigil` CLI, one client credentials client
 * (scope orders:read for the bench audience), a temp directory for keys, data and logs; all of
 * it dropped and removed when `use` ends, however it ends.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { AUDIENCE, DEFAULT_DATABASE_URL, root, withPostgres } from '../setup.js';
import { basic } from './http.js';
import { runNode } from './processes.js';

const SIGIL_CLI = path.join(root, 'services/issuer/bin/sigil.js');

/**
 * @typedef {object} OneClient
 * @property {string} dir the temp directory (keys, data, child logs)
 * @property {Record<string, string>} env the issuer's environment (DATABASE_URL, KEYS_DIR, DATA_DIR, LOG_LEVEL...); ISSUER and PORT are the caller's
 * @property {string} clientId
 * @property {string} clientSecret
 * @property {string} authorization the client's Basic authorization
 */

/**
 * @template T
 * @param {string} name what the database, the directory and the client are named after (`instructions`, `gc_trace`)
 * @param {(setup: OneClient) => Promise<T>} use
 * @returns {Promise<T>}
 */
export async function withOneClient(name, use) {
  const adminUrl = process.env['BENCH_DATABASE_URL'] ?? DEFAULT_DATABASE_URL;
  const database = `sigil_${name}_${Date.now()}_${randomBytes(4).toString('hex')}`;
  const dir = mkdtempSync(path.join(os.tmpdir(), `sigil-${name}-`));
  let created = false;
  try {
    await withPostgres(adminUrl, async (admin) => {
      await admin.query(`CREATE DATABASE ${database}`);
    });
    created = true;
    const databaseUrl = new URL(adminUrl);
    databaseUrl.pathname = `/${database}`;
    const env = { DATABASE_URL: databaseUrl.href, KEYS_DIR: path.join(dir, 'keys'), DATA_DIR: path.join(dir, 'data'), LOG_LEVEL: 'warn', NODE_ENV: '', ISSUER: 'http://127.0.0.1:1' };
    mkdirSync(env.DATA_DIR);
    await runNode(SIGIL_CLI, ['migrate'], env);
    const answer = /** @type {Record<string, unknown>} */ (
      JSON.parse(await runNode(SIGIL_CLI, ['clients', 'create', '--name', `${name}-${randomBytes(3).toString('hex')}`, '--grant', 'client_credentials', '--scope', 'orders:read', '--resource', AUDIENCE, '--json'], env))
    );
    const clientId = String(answer['client_id']);
    const clientSecret = String(answer['client_secret']);
    return await use({ dir, env, clientId, clientSecret, authorization: basic(clientId, clientSecret) });
  } finally {
    if (created) await withPostgres(adminUrl, (admin) => admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).then(() => undefined));
    rmSync(dir, { recursive: true, force: true });
  }
}
