// @ts-check
/**
 * The issuer in one process (`startIssuer`, as `WEB_CONCURRENCY=1` runs it), for the client
 * cache's rows (`workloads/client-cache.js`): run by node with `--expose-gc`, it also answers
 * the bench on a control port of its own (127.0.0.1:CONTROL_PORT, never the issuer's):
 *
 * - `POST /provision?count=N`: creates N clients with the `clients.create` admin command on the
 *   issuer's own database pool (the path `sigil clients create` takes), 16 at a time, and answers
 *   `{ ms, authorizations }` (each client's `Basic` header value).
 * - `GET /heap`: collects garbage (twice, a full collection each) and answers `{ heapUsed }`.
 *
 * Its environment is the bench's issuer environment with its own PORT and ISSUER, and
 * CLIENT_CACHE_MAX large enough for every client the rows use.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';

import { basic } from './http.js';
import { load as loadFrom, pooled } from './provision.js';

const issuerDist = process.env['ISSUER_DIST'] ?? '';
/** @param {string} file */
const load = (file) => loadFrom(issuerDist, file);

/** @type {() => void} */
const collect = /** @type {{ gc?: () => void }} */ (globalThis).gc ?? (() => {
  throw new Error('cache-issuer.js needs node --expose-gc');
});

const { loadConfig } = await load('config.js');
const { createLogger } = await load('logger.js');
const { startIssuer } = await load('server.js');
const { runAdminCommand } = await load('admin/commands.js');
const { PasswordHasher } = await load('domain/passwords.js');

const config = loadConfig(process.env);
const issuer = await startIssuer(config, createLogger(config.logLevel));
const commands = { db: issuer.db, hasher: new PasswordHasher(config.argon2), actor: 'cli' };
let created = 0;

/**
 * @param {number} count
 * @returns {Promise<{ ms: number, authorizations: string[] }>}
 */
async function provision(count) {
  const started = performance.now();
  const authorizations = await pooled(count, 16, async () => {
    created += 1;
    const result = await runAdminCommand(commands, 'clients.create', { name: `bench-cache-${created}`, grants: ['client_credentials'], scopes: ['orders:read'], resources: [process.env['BENCH_AUDIENCE'] ?? ''] });
    return basic(String(result['client_id']), String(result['client_secret']));
  });
  return { ms: performance.now() - started, authorizations };
}

const control = http.createServer((request, response) => {
  const url = new URL(request.url ?? '/', 'http://control');
  const answer = (/** @type {number} */ status, /** @type {unknown} */ body) => {
    response.writeHead(status, { 'content-type': 'application/json' });
    response.end(JSON.stringify(body));
  };
  request.resume();
  if (request.method === 'POST' && url.pathname === '/provision') {
    const count = Number(url.searchParams.get('count'));
    if (!Number.isInteger(count) || count < 1) return answer(400, { error: 'count must be a whole number of at least 1' });
    provision(count).then((result) => answer(200, result), (error) => answer(500, { error: String(error) }));
  } else if (request.method === 'GET' && url.pathname === '/heap') {
    collect();
    collect();
    answer(200, { heapUsed: process.memoryUsage().heapUsed });
  } else answer(404, { error: 'unknown' });
});
control.listen(Number(process.env['CONTROL_PORT']), '127.0.0.1');

const stop = () => {
  control.close();
  issuer.close().then(() => process.exit(0), () => process.exit(1));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
