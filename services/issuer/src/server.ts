import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import os from 'node:os';

import type { Knex } from 'knex';

import type { AdminContext } from './admin/commands.js';
import { ADMIN_API_SCOPES, adminAudience, AdminTokenVerifier } from './admin/http/authentication.js';
import { openApiDocument } from './admin/http/openapi.js';
import { adminApi } from './admin/http/router.js';
import { startAdminSocket } from './admin/socket.js';
import { createApp, metricsListener } from './app.js';
import type { Config } from './config.js';
import { loadCookieKeys } from './cookie-keys.js';
import { sweepAuditTrail, type AdminEvent, type AuthEvent } from './domain/audit.js';
import { MAX_ACCESS_TOKEN_TTL } from './domain/clients.js';
import { sweepLoginThrottle } from './domain/login-throttle.js';
import { argon2Concurrency, PasswordHasher } from './domain/passwords.js';
import { clientAddress, trustProxy } from './http/client-address.js';
import { corsPolicy } from './http/cors-policy.js';
import { answerUnparsableRequests } from './http/client-error.js';
import { drainable } from './http/drain.js';
import { revocationFeed as revocationFeedRoute } from './http/revocation-feed.js';
import { interactionRoutes } from './interactions/routes.js';
import { activeSince, signingOrder, type KeyStore, type StoredKey } from './keys/key-store.js';
import { ensureSigningKey, nextRotationAt, type KeyPolicy } from './keys/lifecycle.js';
import { startKeyMaintenance } from './keys/maintenance.js';
import { openKeyStore } from './keys/open.js';
import { logAdminChange, loggedSignInStores } from './event-log.js';
import type { Logger } from './logger.js';
import { createMetrics, type IssuerMetrics } from './metrics.js';
import { ClientCache } from './oidc/client-cache.js';
import { ClientJwksFetcher } from './oidc/client-jwks.js';
import { allowedScopes, loadClientMetadata, registeredResources } from './oidc/client-metadata.js';
import { createProvider, ID_TOKEN_TTL } from './oidc/provider.js';
import { ResourceScopes } from './oidc/resource-scopes.js';
import { startChangeFeed } from './storage/changes.js';
import { databasePoolState, migrate, openDatabase, type Database } from './storage/db.js';
import { createStores, type Stores } from './storage/index.js';

const SWEEP_INTERVAL_MS = 10 * 60 * 1000;
/** The admin API document's version (its `info.version`). */
const ADMIN_API_VERSION = '1.0.0';
/** Beyond the longest token lifetime, how long a retired key stays published (clock skew). */
const KEY_RETENTION_MARGIN_S = 300;

export interface RunningIssuer {
  /** Where the issuer listens, e.g. `http://127.0.0.1:4000`. */
  readonly url: string;
  readonly port: number;
  /** Where `/metrics` is served when METRICS_PORT is set, e.g. `http://127.0.0.1:9464`. */
  readonly metricsUrl: string | undefined;
  /** The issuer's database handle (for embedding and tests; the embedded one is this process's only connection). */
  readonly db: Knex;
  /** The stores over `db`. */
  readonly stores: Stores;
  /**
   * Drains and stops: no new connections, requests in flight answered (with `Connection: close`)
   * within SHUTDOWN_GRACE, then background work stops, the database closes and the data
   * directory is released.
   */
  close(): Promise<void>;
  /** Closes the listener only (the first step of `close()`, taken early by a cluster worker). */
  stopAccepting(): void;
}

/** Things to undo at shutdown, undone in reverse order; a failure is logged and the rest still run. */
class Cleanups {
  readonly #steps: (() => Promise<void>)[] = [];
  constructor(private readonly logger: Logger) {}

  add(step: () => Promise<void>): void {
    this.#steps.push(step);
  }

  async run(): Promise<void> {
    for (const step of this.#steps.splice(0).reverse()) {
      await step().catch((error: unknown) => this.logger.error({ err: error }, 'error while stopping'));
    }
  }
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

function open(config: Config, logger: Logger): Promise<Database> {
  return openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    timeoutMs: config.databaseTimeoutMs,
    poolMax: config.databasePoolMax,
    log: (level, message) => logger[level]({ component: 'knex' }, message),
    onLockCompromised: (error) => {
      logger.fatal({ err: error }, 'lost ownership of the embedded data directory; stopping');
      process.exit(1);
    },
  });
}

/** A `login.locked` event: each key it names counts one lock applied. */
function countLocks(metrics: IssuerMetrics, event: AuthEvent): void {
  const keys = event.detail?.['keys'];
  if (!Array.isArray(keys)) return;
  for (const key of keys) if (typeof key === 'string') metrics.loginLocks.inc({ key });
}

/** Expired engine rows and used jtis, idle throttle counters, audit events past retention and expired revocations, now and every SWEEP_INTERVAL_MS. */
function startSweeper(stores: Stores, config: Config, logger: Logger): () => Promise<void> {
  const sweep = () =>
    Promise.all([stores.payloads.sweepExpired({ retryWindow: config.refreshTokenRetryWindow }), sweepLoginThrottle(stores.throttle), sweepAuditTrail(stores.audit, config.auditRetentionDays), stores.revocations.sweepExpired(), stores.replays.sweepExpired()])
      .then(([removed, , events]) => (removed > 0 || events > 0) && logger.debug({ removed, events }, 'expired rows swept'))
      .catch((error: unknown) => logger.warn({ err: error }, 'sweep failed'));
  const sweeper = setInterval(sweep, SWEEP_INTERVAL_MS);
  sweeper.unref();
  void sweep();
  return async () => clearInterval(sweeper);
}

interface EngineParts {
  readonly config: Config;
  readonly stores: Stores;
  readonly clients: ClientCache;
  readonly resourceScopes: ResourceScopes;
  readonly hasher: PasswordHasher;
  readonly logger: Logger;
  readonly metrics: IssuerMetrics;
  readonly keys: readonly StoredKey[];
  readonly keyStore: KeyStore;
  readonly cleanups: Cleanups;
  /** What the admin API runs its commands with (each request's caller is the actor). */
  readonly admin: Omit<AdminContext, 'actor' | 'keysChanged'>;
}

/** The rotation policy of this deployment: KEY_ROTATION_INTERVAL, KEY_PUBLISH_LEAD, and how long retired keys stay published. */
function keyPolicy(config: Config): KeyPolicy {
  return {
    publishLead: config.keyPublishLead,
    rotationInterval: config.keyRotationInterval,
    // a client may have its own access-token lifetime, up to MAX_ACCESS_TOKEN_TTL
    retention: Math.max(config.accessTokenTtl, MAX_ACCESS_TOKEN_TTL, ID_TOKEN_TTL) + KEY_RETENTION_MARGIN_S,
  };
}

/**
 * The request listener: the engine (rebuilt with the new keys whenever they change; requests in
 * flight finish on the old one), the login pages, and Sigil's own routes.
 */
async function buildListener({ config, stores, clients, resourceScopes, hasher, logger, metrics, keys, keyStore, cleanups, admin }: EngineParts) {
  const cookieKeys = await loadCookieKeys(config.cookieKeys, config.dataDir);
  // one rule for the client address, in express (login form) and in the engine (password grant)
  const trust = trustProxy(config.trustProxy);
  const cors = corsPolicy(config.corsOrigins);
  // one per process: every engine built here shares the clients' jwks_uri answers and their refetch floor
  const clientJwks = new ClientJwksFetcher();
  const buildProvider = (signing: readonly StoredKey[]) =>
    createProvider({
      config,
      stores,
      hasher,
      metrics,
      signingKeys: signing.map((key) => key.jwk),
      cookieKeys,
      logger,
      clients,
      resourceScopes,
      clientAddress: (req) => clientAddress(req, trust),
      edgeMiddlewares: [cors.withholdEngineHeaders],
      clientJwks,
    });
  let provider = buildProvider(keys);
  let oidc = provider.callback();
  const policy = keyPolicy(config);
  const maintenance = startKeyMaintenance(keys, {
    store: keyStore,
    policy,
    onChange: (reloaded) => {
      provider = buildProvider(reloaded);
      oidc = provider.callback();
    },
    onStep: (step) => metrics.keyRotationSteps.inc({ step: step.step }),
    logger,
  });
  cleanups.add(() => maintenance.stop());
  metrics.followKeys(() => {
    const inUse = maintenance.keys();
    const current = inUse.find((key) => key.state === 'current');
    return { activeSince: current === undefined ? undefined : new Date(activeSince(current)), nextRotationAt: nextRotationAt(inUse, policy, new Date()) };
  });
  const interactions = interactionRoutes({ provider: () => provider, stores, hasher, metrics, cookieKeys, logger });
  const revocationFeed = revocationFeedRoute({
    issuer: config.issuer,
    revocations: stores.revocations,
    findClient: (id) => provider.Client.find(id),
    jwks: clientJwks,
    unique: (iss, jti, exp) => provider.ReplayDetection.unique(iss, jti, exp),
  });
  const verifier = new AdminTokenVerifier({
    issuer: config.issuer,
    keys: () => maintenance.keys(),
    withdrawals: stores,
    // the engine's client (cached as for the token endpoint): its scopes and resources as registered
    client: async (id) => {
      const client = await provider.Client.find(id);
      return client === undefined ? undefined : { scopes: allowedScopes(client), resources: registeredResources(client) };
    },
  });
  let document: unknown;
  const adminContext = {
    ...admin,
    keysChanged: () => maintenance.refresh(),
    clientChanged: (id: string) => {
      clients.forget(id);
      resourceScopes.forget();
    },
  };
  const adminRoutes = adminApi({ issuer: config.issuer, verifier, context: adminContext, openapi: () => (document ??= openApiDocument(config.issuer, ADMIN_API_VERSION)), logger });
  const app = createApp({ config, oidc: (req, res) => oidc(req, res), databaseReachable: stores.reachable, logger, interactions, metrics, trust, cors, revocationFeed, adminApi: adminRoutes });
  return { app, metricsApp: metricsListener(metrics, logger), adminContext };
}

/** The METRICS_PORT listener, when configured: closed at shutdown with the rest (its scrapes are short). */
async function startMetricsListener(config: Config, listener: ReturnType<typeof metricsListener>, cleanups: Cleanups): Promise<number | undefined> {
  if (config.metricsPort === undefined) return undefined;
  const server = createServer(listener);
  const drain = drainable(server);
  await listen(server, config.metricsPort);
  cleanups.add(() => drain.drain(config.shutdownGrace * 1000));
  return (server.address() as AddressInfo).port;
}

/**
 * Starts an issuer: opens and migrates the database, loads (or creates) the signing key,
 * builds the engine and serves it. In embedded mode it also serves the admin socket.
 */
export async function startIssuer(config: Config, logger: Logger): Promise<RunningIssuer> {
  const database = await open(config, logger);
  const cleanups = new Cleanups(logger);
  cleanups.add(() => database.close());
  try {
    const applied = await migrate(database.knex);
    if (applied.length > 0) logger.info({ applied }, 'migrations applied');
    const metrics = createMetrics();
    metrics.followDatabasePool(() => databasePoolState(database.knex));
    const stored = createStores(database.knex);
    // every sign-in event of the audit trail is also one log line (event-log.ts)
    const stores = { ...stored, ...loggedSignInStores(stored, logger, (event) => countLocks(metrics, event)) };
    metrics.followLockedKeys(() => stores.throttle.countLocked(new Date()));

    // before anything else uses the embedded database's one session (LISTEN must not land in a transaction)
    const changes = await startChangeFeed(database);
    cleanups.add(() => changes.close());
    if (!changes.live) logger.warn('change notifications are not received yet: clients are read from the database on every request until they are');
    const clients = new ClientCache((id) => loadClientMetadata(stores.clients, id), changes, {
      max: config.clientCacheMax,
      onLookup: (hit) => metrics.clientCacheLookups.inc({ result: hit ? 'hit' : 'miss' }),
    });
    // the admin API is the issuer's own resource: its tokens carry its scopes and only those
    const resourceScopes = new ResourceScopes(stores.clients, changes, new Map([[adminAudience(config.issuer), ADMIN_API_SCOPES]]));

    const keyStore = openKeyStore(config, stores.signingKeys, changes);
    const keys = signingOrder(await ensureSigningKey(keyStore));
    const hasher = new PasswordHasher(config.argon2, {
      concurrency: argon2Concurrency(os.availableParallelism(), config.webConcurrency, config.threadpoolSize),
    });
    metrics.followPasswordHashing(() => hasher.usage());
    const admin = {
      db: database.knex,
      hasher,
      keys: () => ({ store: keyStore, publishLead: config.keyPublishLead }),
      notifications: () => Promise.resolve(changes.live),
      recorded: (event: AdminEvent) => logAdminChange(logger, event),
    };
    const { app, metricsApp, adminContext } = await buildListener({ config, stores, clients, resourceScopes, hasher, logger, metrics, keys, keyStore, cleanups, admin });
    if (database.kind === 'embedded') {
      // the socket is reached only by the data directory's owner: the CLI's own actor
      cleanups.add(await startAdminSocket(config.dataDir, { ...adminContext, actor: 'cli' }, logger));
    }
    cleanups.add(startSweeper(stores, config, logger));

    const metricsPort = await startMetricsListener(config, metricsApp, cleanups);
    const server = createServer(app);
    answerUnparsableRequests(server);
    const listener = drainable(server);
    await listen(server, config.port);
    // first to run: requests in flight finish on an open database, then the rest stops
    cleanups.add(() => listener.drain(config.shutdownGrace * 1000));
    const { port } = server.address() as AddressInfo;
    logger.info(
      { port, metricsPort, issuer: config.issuer, database: database.kind, keys: keys.map((key) => `${key.jwk.kid} (${key.state})`) },
      'sigil issuer listening',
    );
    const metricsUrl = metricsPort === undefined ? undefined : `http://127.0.0.1:${metricsPort}`;
    return { url: `http://127.0.0.1:${port}`, port, metricsUrl, db: database.knex, stores, close: () => cleanups.run(), stopAccepting: () => listener.stopAccepting() };
  } catch (error) {
    await cleanups.run();
    throw error;
  }
}
