import { existsSync } from 'node:fs';

import type { Config } from '../config.js';
import { AdminInputError, RECORDED_KEY_CHANGES, runAdminCommand, type AdminCommandName } from '../admin/commands.js';
import { sendAdminCommand } from '../admin/socket.js';
import { keyCommandInput, runKeyCommand, type KeyCommandContext, type KeyCommandName } from '../keys/commands.js';
import { FileKeyStore } from '../keys/file-store.js';
import { openKeyStore } from '../keys/open.js';
import { embeddedDatabasePath, migrate, openDatabase, type Database } from '../storage/db.js';
import { notificationsArrive } from '../storage/doctor.js';
import { DataDirInUseError } from '../storage/embedded-lock.js';
import { createSigningKeyStore } from '../storage/signing-keys.js';
import { PasswordHasher } from '../domain/passwords.js';

/** A failure the CLI reports in one line; `exitCode` 2 means bad input, nothing written. */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode: 1 | 2,
  ) {
    super(message);
  }
}

/** The password piped to standard input (`--password-stdin`): its first line, without the line break. */
export async function readPassword(): Promise<string> {
  if (process.stdin.isTTY) throw new CliError('--password-stdin needs the password piped in (e.g. printf %s "$PASSWORD" | sigil …)', 2);
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').split(/\r?\n/u)[0] ?? '';
}

const WAIT_FOR_OWNER_MS = 15_000;
/** How long `sigil doctor` waits for its own notification to come back. */
const NOTIFICATION_TIMEOUT_MS = 3000;

async function runDirect(
  config: Config,
  database: Database,
  name: AdminCommandName,
  input: unknown,
): Promise<Record<string, unknown>> {
  try {
    if (name !== 'migrate') await migrate(database.knex);
    const keys = (): KeyCommandContext => ({ store: openKeyStore(config, createSigningKeyStore(database.knex)), publishLead: config.keyPublishLead });
    const notifications = () => notificationsArrive(database, NOTIFICATION_TIMEOUT_MS);
    return await runAdminCommand({ db: database.knex, hasher: new PasswordHasher(config.argon2), keys, notifications, actor: 'cli' }, name, input);
  } catch (error) {
    if (error instanceof AdminInputError) throw new CliError(error.message, 2);
    throw error;
  } finally {
    await database.close();
  }
}

/**
 * Runs an admin command where the data lives: directly against PostgreSQL; for the
 * embedded database, through the running issuer's admin socket when an issuer owns it,
 * or by opening it (and holding its lock) when none does.
 */
export async function runDatabaseCommand(
  config: Config,
  name: AdminCommandName,
  input: unknown,
): Promise<Record<string, unknown>> {
  if (config.databaseUrl !== undefined) {
    return runDirect(
      config,
      await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, timeoutMs: config.databaseTimeoutMs, poolMax: config.databasePoolMax }),
      name,
      input,
    );
  }
  const deadline = Date.now() + WAIT_FOR_OWNER_MS;
  for (;;) {
    const reply = await sendAdminCommand(config.dataDir, name, input);
    if (reply !== undefined) {
      if (reply.ok) return reply.result;
      throw new CliError(reply.error.message, reply.error.code === 'invalid_input' ? 2 : 1);
    }
    try {
      return await runDirect(config, await openDatabase({ databaseUrl: undefined, dataDir: config.dataDir }), name, input);
    } catch (error) {
      // the owner may be starting (lock taken, socket not yet open) or be another CLI run
      if (!(error instanceof DataDirInUseError)) throw error;
      if (Date.now() > deadline) throw new CliError(error.message, 1);
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  }
}

/** The `keys` commands that change one key (or rotate) on the file store, and are recorded in the audit trail afterwards. */
const RECORDED_FILE_CHANGES: ReadonlySet<KeyCommandName> = new Set(RECORDED_KEY_CHANGES);

/**
 * Runs a `sigil keys` command. On the database store, where every admin command goes. On the
 * file store, right here on this environment's KEYS_DIR (it need not be a running issuer's: a
 * secret may be written in one place and mounted read-only where issuers read it); a change is
 * then recorded in the audit trail as the admin command `keys.record-change`, through the
 * running issuer's socket or on the database; with the embedded database, only when there is
 * one in DATA_DIR (keys made before the first start, or on a host that only writes the secret,
 * have no audit trail to go to, and none is created for them).
 */
export async function runKeysCommand(config: Config, name: KeyCommandName, input: unknown): Promise<Record<string, unknown>> {
  // bad input is refused here, in the same words on either store (exit 2, nothing opened)
  keyCommandInput(name, input);
  if (config.keyStore === 'database') return runDatabaseCommand(config, name, input);
  const result = await runKeyCommand({ store: new FileKeyStore(config.keysDir), publishLead: config.keyPublishLead }, name, input);
  if (!RECORDED_FILE_CHANGES.has(name)) return result;
  if (config.databaseUrl === undefined && !existsSync(embeddedDatabasePath(config.dataDir))) return result;
  try {
    await runDatabaseCommand(config, 'keys.record-change', { command: name, input, result });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new CliError(`the keys in ${config.keysDir} were changed, but the change could not be recorded in the audit trail: ${reason}`, 1);
  }
  return result;
}
