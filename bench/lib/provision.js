// @ts-check
/**
 * Creating clients, two ways:
 *
 * - over the issuer's HTTP admin API (`createClientsOverHttp`): `POST /admin/v1/clients` with an
 *   admin API token, a bounded number in flight. The set-up creates the many-clients workload's
 *   clients this way (instead of one `sigil` CLI process per client).
 * - the `clients.create` admin command without HTTP (`openCommandPath`), as the CLI runs it:
 *   the baseline of the `admin_create_clients` row. On PostgreSQL, what `sigil clients create`
 *   does in-process (services/issuer/src/cli/run-command.ts): `openDatabase`, `migrate`, then
 *   `runAdminCommand({ db, hasher, actor }, 'clients.create', input)` on one knex pool, in the
 *   bench process. On the embedded database (PGlite), which the running issuer owns, each
 *   command goes through its admin socket in DATA_DIR (`sendAdminCommand`), as the CLI does
 *   beside a running issuer.
 */
import http from 'node:http';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';

import { ADMIN_API_PATH, createdClient, JSON_TYPE } from './admin.js';

/**
 * The parts of the issuer's build output used here (services/issuer/dist, which has no .d.ts).
 * @typedef {{ knex: unknown, close: () => Promise<void> }} IssuerDatabase
 * @typedef {{
 *   openDatabase: (options: { databaseUrl: string | undefined, dataDir: string, log?: (level: 'warn' | 'error', message: string) => void }) => Promise<IssuerDatabase>,
 *   migrate: (knex: unknown) => Promise<string[]>,
 * }} DbModule
 * @typedef {{ runAdminCommand: (context: { db: unknown, hasher: unknown, actor: string }, name: string, input: unknown) => Promise<Record<string, unknown>> }} CommandsModule
 * @typedef {{ PasswordHasher: new (parameters: { memoryKib: number, timeCost: number, parallelism: number }) => unknown }} PasswordsModule
 * @typedef {{ ok: true, result: Record<string, unknown> } | { ok: false, error: { code: string, message: string } }} AdminReply
 * @typedef {{ sendAdminCommand: (dataDir: string, name: string, input: unknown) => Promise<AdminReply | undefined> }} SocketModule
 */

/**
 * Runs N async tasks with at most `width` in flight.
 * @template T
 * @param {number} count
 * @param {number} width
 * @param {(index: number) => Promise<T>} task
 * @returns {Promise<T[]>}
 */
export async function pooled(count, width, task) {
  /** @type {T[]} */
  const results = [];
  let next = 0;
  const lane = async () => {
    while (next < count) {
      const index = next;
      next += 1;
      results[index] = await task(index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, count) }, lane));
  return results;
}

/**
 * A module of the issuer's build output.
 * @param {string} issuerDist services/issuer/dist
 * @param {string} file relative to it
 */
export const load = (issuerDist, file) => import(pathToFileURL(path.join(issuerDist, file)).href);

/** @param {Record<string, unknown>} result */
function credentials(result) {
  const id = result['client_id'];
  const secret = result['client_secret'];
  if (typeof id !== 'string' || typeof secret !== 'string') throw new Error(`clients.create answered without client_id/client_secret: ${JSON.stringify(result).slice(0, 300)}`);
  return { id, secret };
}

/**
 * @typedef {object} CommandPath the `clients.create` admin command, one client per call
 * @property {(input: Record<string, unknown>) => Promise<{ id: string, secret: string }>} create
 * @property {boolean} inBenchProcess whether the command runs in this process (PostgreSQL), or in the issuer (embedded, through its admin socket)
 * @property {string} path how the commands run, for the report
 * @property {() => Promise<void>} close
 */

/**
 * Opens the `clients.create` command path: on PostgreSQL a knex pool in this process (closed by
 * `close`), on the embedded database the running issuer's admin socket.
 * @param {object} options
 * @param {string} options.issuerDist
 * @param {string | undefined} options.databaseUrl PostgreSQL; undefined: the embedded database of the issuer running on `dataDir`
 * @param {string} options.dataDir the issuer's DATA_DIR
 * @param {{ memoryKib: number, timeCost: number, parallelism: number }} options.argon2 the issuer's argon2 parameters (the command context's hasher)
 * @param {(message: string) => void} options.log
 * @returns {Promise<CommandPath>}
 */
export async function openCommandPath(options) {
  const { issuerDist, databaseUrl, dataDir, log } = options;
  if (databaseUrl === undefined) {
    const { sendAdminCommand } = /** @type {SocketModule} */ (await load(issuerDist, 'admin/socket.js'));
    return {
      create: async (input) => {
        const reply = await sendAdminCommand(dataDir, 'clients.create', input);
        if (reply === undefined) throw new Error(`no issuer answers on the admin socket in ${dataDir}`);
        if (!reply.ok) throw new Error(`clients.create through the admin socket failed: ${reply.error.code}: ${reply.error.message}`);
        return credentials(reply.result);
      },
      inBenchProcess: false,
      path: 'clients.create through the admin socket of the running issuer (sendAdminCommand)',
      close: async () => {},
    };
  }
  const { openDatabase, migrate } = /** @type {DbModule} */ (await load(issuerDist, 'storage/db.js'));
  const { runAdminCommand } = /** @type {CommandsModule} */ (await load(issuerDist, 'admin/commands.js'));
  const { PasswordHasher } = /** @type {PasswordsModule} */ (await load(issuerDist, 'domain/passwords.js'));
  const database = await openDatabase({ databaseUrl, dataDir, log: (level, message) => log(`command path database ${level}: ${message}`) });
  try {
    await migrate(database.knex); // nothing to apply (the issuer did it); the CLI does the same before a command
  } catch (error) {
    await database.close();
    throw error;
  }
  // the CLI's actor: this is the path `sigil clients create` takes against PostgreSQL (each writes its audit event)
  const context = { db: database.knex, hasher: new PasswordHasher(options.argon2), actor: 'cli' };
  return {
    create: async (input) => credentials(await runAdminCommand(context, 'clients.create', input)),
    inBenchProcess: true,
    path: 'runAdminCommand(\'clients.create\') in the bench process against PostgreSQL (openDatabase, one knex pool)',
    close: () => database.close(),
  };
}

/**
 * One POST over `agent` (a keep-alive connection of the pool): the status and the body.
 * @param {http.Agent} agent
 * @param {URL} url
 * @param {Record<string, string>} headers
 * @param {string} body
 * @returns {Promise<{ status: number, text: string }>}
 */
function post(agent, url, headers, body) {
  return new Promise((resolve, reject) => {
    const outgoing = http.request(url, { agent, method: 'POST', headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, timeout: 10_000 }, (response) => {
      /** @type {Buffer[]} */
      const chunks = [];
      response.on('data', (chunk) => chunks.push(chunk));
      response.once('end', () => resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      response.once('error', reject);
    });
    outgoing.once('timeout', () => outgoing.destroy(new Error(`no answer from ${url.href} within 10 s`)));
    outgoing.once('error', reject);
    outgoing.end(body);
  });
}

/**
 * Creates `count` clients with `POST <issuer>/admin/v1/clients`, `inFlight` at a time over as
 * many keep-alive connections (node:http, lighter on the shared cores than fetch). Anything but
 * a 201 stops the provisioning with the answer's body.
 * @param {object} options
 * @param {string} options.issuerUrl the issuer's origin
 * @param {string} options.token an admin API access token (scope sigil:admin)
 * @param {number} options.count
 * @param {number} options.inFlight
 * @param {(index: number) => string} options.body the JSON body for client `index`
 * @returns {Promise<{ clients: { id: string, secret: string }[], ms: number, path: string }>}
 */
export async function createClientsOverHttp(options) {
  const { issuerUrl, token, count, inFlight, body } = options;
  const url = new URL(`${ADMIN_API_PATH}/clients`, issuerUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets: inFlight });
  const headers = { authorization: `Bearer ${token}`, 'content-type': JSON_TYPE };
  const started = performance.now();
  try {
    const clients = await pooled(count, inFlight, async (index) => {
      const answer = await post(agent, url, headers, body(index));
      if (answer.status !== 201) throw new Error(`POST ${ADMIN_API_PATH}/clients answered ${answer.status}: ${answer.text.slice(0, 300)}`);
      return createdClient(answer.text);
    });
    return { clients, ms: performance.now() - started, path: `POST ${ADMIN_API_PATH}/clients on the issuer, ${inFlight} in flight` };
  } finally {
    agent.destroy();
  }
}
