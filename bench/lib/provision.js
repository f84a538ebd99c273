// @ts-check
/**
 * Creating clients with the `clients.create` admin command, as the CLI runs it
 * (`openCommandPath`): the baseline of the `admin_create_clients` row, and the many-clients
 * workload's clients (`createClients`, instead of one `sigil` CLI process per client).
 *
 * - PostgreSQL: what `sigil clients create` does in-process (services/issuer/src/cli/run-command.ts):
 *   `openDatabase`, `migrate`, then `runAdminCommand({ db, hasher, actor }, 'clients.create', input)`
 *   on one knex pool, in the bench process.
 * - embedded (PGlite): the running issuer owns the database, so each command goes through its
 *   admin socket in DATA_DIR (`sendAdminCommand`), as the CLI does beside a running issuer.
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';

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
 * @param {string} issuerDist services/issuer/dist
 * @param {string} file relative to it
 */
const load = (issuerDist, file) => import(pathToFileURL(path.join(issuerDist, file)).href);

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
 * Creates `count` clients with the `clients.create` admin command, `inFlight` at a time.
 * @param {Parameters<typeof openCommandPath>[0] & { count: number, inFlight: number, input: (index: number) => Record<string, unknown> }} options
 *   `input`: the command's input for client `index`
 * @returns {Promise<{ clients: { id: string, secret: string }[], ms: number, path: string }>}
 */
export async function createClients(options) {
  const { count, inFlight, input } = options;
  const started = performance.now();
  const commands = await openCommandPath(options);
  try {
    const clients = await pooled(count, inFlight, (index) => commands.create(input(index)));
    return { clients, ms: performance.now() - started, path: `${commands.path}, ${inFlight} in flight` };
  } finally {
    await commands.close();
  }
}
