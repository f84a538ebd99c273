import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import os from 'node:os';

import type { Knex } from 'knex';

import { startAdminSocket } from './admin/socket.js';
import { createApp } from './app.js';
import { clientAddress, trustProxy } from './http/client-address.js';
import type { Config } from './config.js';
import { loadCookieKeys } from './cookie-keys.js';
import { sweepLoginThrottle } from './domain/login-throttle.js';
import { argon2Concurrency, PasswordHasher } from './domain/passwords.js';
import { interactionRoutes } from './interactions/routes.js';
import { createMetrics } from './metrics.js';
import { startKeyReloader } from './keys/key-reloader.js';
import { ensureSigningKey, signingOrder, type StoredKey } from './keys/key-store.js';
import type { Logger } from './logger.js';
import { loadClientMetadata, sweepExpired } from './oidc/adapter.js';
import { ClientCache } from './oidc/client-cache.js';
import { createProvider, ID_TOKEN_TTL } from './oidc/provider.js';
import { startChangeFeed } from './storage/changes.js';
import { migrate, openDatabase } from './storage/db.js';

const SWEEP_INTERVAL_MS = 10 * 60 * 1000;
/** Key changes reach every replica within this interval. */
export const KEYS_POLL_INTERVAL_MS = 2000;
/** Beyond the longest token lifetime, how long a retired key stays published (clock skew). */
const KEY_RETENTION_MARGIN_S = 300;

export interface RunningIssuer {
  /** Where the issuer listens, e.g. `http://127.0.0.1:4000`. */
  readonly url: string;
  readonly port: number;
  /** The issuer's database handle (for embedding and tests; the embedded one is this process's only connection). */
  readonly db: Knex;
  /** Stops accepting requests, closes the database and releases the data directory. */
  close(): Promise<void>;
}

function listen(server: Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/**
 * Starts an issuer: opens and migrates the database, loads (or creates) the signing key,
 * builds the engine and serves it. In embedded mode it also serves the admin socket.
 */
export async function startIssuer(config: Config, logger: Logger): Promise<RunningIssuer> {
  const database = await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    log: (level, message) => logger[level]({ component: 'knex' }, message),
    onLockCompromised: (error) => {
      logger.fatal({ err: error }, 'lost ownership of the embedded data directory; stopping');
      process.exit(1);
    },
  });
  const cleanups: (() => Promise<void>)[] = [() => database.close()];
  const closeAll = async () => {
    for (const cleanup of cleanups.reverse()) {
      await cleanup().catch((error: unknown) => logger.error({ err: error }, 'error while stopping'));
    }
  };

  try {
    const applied = await migrate(database.knex);
    if (applied.length > 0) logger.info({ applied }, 'migrations applied');

    // before anything else uses the embedded database's one session (LISTEN must not land in a transaction)
    const changes = await startChangeFeed(database);
    cleanups.push(() => changes.close());
    if (!changes.live) logger.warn('change notifications are not received yet: clients are read from the database on every request until they are');
    const clients = new ClientCache((id) => loadClientMetadata(database.knex, id), changes);

    const keys = signingOrder(await ensureSigningKey(config.keysDir));
    const cookieKeys = await loadCookieKeys(config.cookieKeys, config.dataDir);
    const hasher = new PasswordHasher(config.argon2, {
      concurrency: argon2Concurrency(os.availableParallelism(), config.webConcurrency, config.threadpoolSize),
    });
    const metrics = createMetrics();
    // one rule for the client address, in express (login form) and in the engine (password grant)
    const trust = trustProxy(config.trustProxy);
    const buildProvider = (signing: readonly StoredKey[]) =>
      createProvider({
        config,
        db: database.knex,
        hasher,
        metrics,
        signingKeys: signing.map((key) => key.jwk),
        cookieKeys,
        logger,
        clients,
        clientAddress: (req) => clientAddress(req, trust),
      });
    // a key change swaps in an engine built with the new keys; requests in flight finish on the old one
    let provider = buildProvider(keys);
    let oidc = provider.callback();
    const interactions = interactionRoutes({ provider: () => provider, db: database.knex, hasher, metrics, cookieKeys, logger });
    const app = createApp({ config, oidc: (req, res) => oidc(req, res), db: database.knex, logger, interactions, metrics, trust });
    cleanups.push(
      startKeyReloader(keys, {
        dir: config.keysDir,
        intervalMs: KEYS_POLL_INTERVAL_MS,
        retentionSeconds: Math.max(config.accessTokenTtl, ID_TOKEN_TTL) + KEY_RETENTION_MARGIN_S,
        onChange: (reloaded) => {
          provider = buildProvider(reloaded);
          oidc = provider.callback();
        },
        logger,
      }),
    );

    if (database.kind === 'embedded') {
      cleanups.push(await startAdminSocket(config.dataDir, { db: database.knex, hasher }, logger));
    }

    const sweep = () =>
      Promise.all([sweepExpired(database.knex), sweepLoginThrottle(database.knex)])
        .then(([removed]) => removed > 0 && logger.debug({ removed }, 'expired rows swept'))
        .catch((error: unknown) => logger.warn({ err: error }, 'sweep failed'));
    const sweeper = setInterval(sweep, SWEEP_INTERVAL_MS);
    sweeper.unref();
    cleanups.push(async () => clearInterval(sweeper));
    void sweep();

    const server = createServer(app);
    await listen(server, config.port);
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
          setTimeout(() => server.closeAllConnections(), 5000).unref();
        }),
    );
    const { port } = server.address() as AddressInfo;
    logger.info(
      { port, issuer: config.issuer, database: database.kind, keys: keys.map((key) => `${key.jwk.kid} (${key.state})`) },
      'sigil issuer listening',
    );
    return { url: `http://127.0.0.1:${port}`, port, db: database.knex, close: closeAll };
  } catch (error) {
    await closeAll();
    throw error;
  }
}
