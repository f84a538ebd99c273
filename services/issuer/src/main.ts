import cluster, { type Worker } from 'node:cluster';
import os from 'node:os';

import { ConfigError, loadConfig, type Config } from './config.js';
import { argon2Concurrency } from './domain/passwords.js';
import { KeyStoreError } from './keys/key-store.js';
import { createLogger, routeConsoleTo, type Logger } from './logger.js';
import { DataDirInUseError } from './storage/embedded-lock.js';

/** A worker that dies this soon after it was started is failing to start: stop, don't loop. */
const STARTUP_GRACE_MS = 10_000;
/** Beyond SHUTDOWN_GRACE, for what follows the drain (background work, the database) before the process gives up waiting. */
const STOP_MARGIN_MS = 2000;

/**
 * Calls `stop` on the first SIGTERM or SIGINT. Later ones are ignored: Ctrl-C reaches the whole
 * process group (a cluster's workers, `npm run stack`'s services) and the parent forwards a
 * SIGTERM as well, which must not cut the drain short; the drain is bounded anyway.
 */
function onSignals(stop: (signal: NodeJS.Signals) => void): void {
  let stopping = false;
  const handle = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    stop(signal);
  };
  process.on('SIGTERM', handle);
  process.on('SIGINT', handle);
}

/** Ends the process if stopping takes longer than the grace and its margin (a stuck database, say). */
function stopDeadline(config: Config, logger: Logger, onExpiry: () => void = () => undefined): void {
  setTimeout(() => {
    logger.error({ graceSeconds: config.shutdownGrace }, 'stopping took longer than SHUTDOWN_GRACE; exiting');
    onExpiry();
    process.exit(1);
  }, config.shutdownGrace * 1000 + STOP_MARGIN_MS).unref();
}

/** The one line for a port the issuer cannot listen on (in use, or privileged), or undefined for any other failure. */
function listenFailureMessage(error: unknown, port: number): string | undefined {
  const code = (error as { code?: unknown }).code;
  if (code === 'EADDRINUSE') return `port ${port} is in use by another process (PORT)`;
  if (code === 'EACCES') return `not allowed to listen on port ${port} (PORT)`;
  return undefined;
}

/** Between a cluster's primary and its workers: a worker's listener is closed; a worker may drain. */
const LISTENER_CLOSED = 'sigil:listener-closed';
const DRAIN = 'sigil:drain';
/** How long a worker waits for the primary's word before draining anyway (a primary that is gone, say). */
const DRAIN_SIGNAL_WAIT_MS = 2000;

function isMessage(message: unknown, kind: string): boolean {
  return typeof message === 'object' && message !== null && (message as { sigil?: unknown }).sigil === kind;
}

/**
 * Resolves when this process may drain: at once for a single process; for a cluster worker,
 * once the primary says every worker's listener is closed. Until then the primary may still
 * hand this worker's clients' new connections to another worker, which must not be draining
 * already (a connection handed to a closed worker would be reset).
 */
function mayDrain(): Promise<void> {
  if (!cluster.isWorker || process.send === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, DRAIN_SIGNAL_WAIT_MS);
    process.on('message', (message: unknown) => {
      if (!isMessage(message, DRAIN)) return;
      clearTimeout(timer);
      resolve();
    });
    process.send?.({ sigil: LISTENER_CLOSED });
  });
}

/** One issuer in this process (the only one, or a cluster worker). */
async function serve(config: Config, logger: Logger): Promise<void> {
  // before the modules it instruments (server.js loads express, knex and pg); never loaded without an endpoint
  const tracing = config.otlpEndpoint === undefined ? undefined : (await import('./tracing.js')).startTracing({ endpoint: config.otlpEndpoint, serviceName: config.serviceName, logger });
  // loaded after the configuration is checked, so a bad value prints one line and nothing else
  const { startIssuer } = await import('./server.js');
  let issuer;
  try {
    issuer = await startIssuer(config, logger);
  } catch (error) {
    if (error instanceof DataDirInUseError || error instanceof KeyStoreError) {
      process.stderr.write(`sigil: ${error.message}\n`);
      process.exit(1);
    }
    const listenFailure = listenFailureMessage(error, config.port);
    if (listenFailure !== undefined) {
      process.stderr.write(`sigil: ${listenFailure}\n`);
      process.exit(1);
    }
    logger.fatal({ err: error }, 'failed to start');
    process.exit(1);
  }
  onSignals((signal) => {
    logger.info({ signal, graceSeconds: config.shutdownGrace }, 'stopping: draining requests in flight');
    stopDeadline(config, logger);
    issuer.stopAccepting();
    mayDrain()
      .then(() => issuer.close())
      // the spans still buffered are sent before the process exits
      .then(() => tracing?.shutdown().catch(() => undefined))
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  });
}

/**
 * libuv threads per worker, unless the operator set UV_THREADPOOL_SIZE: argon2id hashing and the
 * engine's RSA signatures run on them. Each worker runs its share of the cores in argon2id
 * computations at once (see argon2Concurrency) and keeps one thread more, so that password
 * hashes never hold up a signature; not libuv's 4 each.
 */
function threadsPerWorker(cores: number, workers: number): number {
  return argon2Concurrency(cores, workers) + 1;
}

/**
 * Tells stopping workers when to drain: while the cluster stops, once every worker's listener is
 * closed (the primary then holds no connection it could still hand out); otherwise (one worker
 * stopped on its own) at once.
 */
function coordinateDrain(stopping: () => boolean): void {
  const closed = new Set<number>();
  const released = new Set<number>();
  // once per worker; a worker may be exiting as it is told (its channel not yet seen closed):
  // the write then fails (EPIPE), which without a callback would be an uncaught 'error'
  const tell = (worker: Worker) => {
    if (released.has(worker.id) || !worker.isConnected()) return;
    released.add(worker.id);
    worker.send({ sigil: DRAIN }, undefined, () => undefined);
  };
  const release = () => {
    const workers = Object.values(cluster.workers ?? {}).flatMap((worker) => (worker === undefined ? [] : [worker]));
    if (!workers.every((worker) => closed.has(worker.id))) return;
    for (const worker of workers) tell(worker);
  };
  cluster.on('message', (worker, message: unknown) => {
    if (!isMessage(message, LISTENER_CLOSED)) return;
    closed.add(worker.id);
    if (stopping()) release();
    else tell(worker);
  });
  cluster.on('exit', (worker) => {
    closed.delete(worker.id);
    released.delete(worker.id);
    if (stopping()) release();
  });
}

/** WEB_CONCURRENCY workers share the port; a worker that crashes later is replaced. */
function supervise(config: Config, logger: Logger): void {
  const startedAt = new Map<number, number>();
  let stopping = false;
  const workerEnv =
    process.env['UV_THREADPOOL_SIZE'] === undefined ? { UV_THREADPOOL_SIZE: String(threadsPerWorker(os.availableParallelism(), config.webConcurrency)) } : {};
  const fork = () => {
    const worker = cluster.fork(workerEnv);
    startedAt.set(worker.id, Date.now());
    // a failed write to, or signal for, a worker that is exiting: its 'exit' follows and is handled there
    worker.on('error', (error: Error) => logger.warn({ worker: worker.id, err: error }, 'a worker could not be reached'));
  };
  // each worker drains on its own SIGTERM, sent straight to it (no IPC disconnect first)
  const signalWorkers = (signal: NodeJS.Signals) => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill(signal);
  };
  cluster.on('exit', (worker, code, signal) => {
    const lived = Date.now() - (startedAt.get(worker.id) ?? 0);
    startedAt.delete(worker.id);
    if (stopping) {
      if (startedAt.size === 0) process.exit(process.exitCode ?? 0);
      return;
    }
    if (lived < STARTUP_GRACE_MS && code !== 0) {
      logger.fatal({ worker: worker.id, code, signal }, 'a worker failed to start; stopping');
      stopping = true;
      signalWorkers('SIGTERM');
      process.exitCode = 1;
      return;
    }
    logger.error({ worker: worker.id, code, signal }, 'worker exited; starting another');
    fork();
  });
  coordinateDrain(() => stopping);
  onSignals((signal) => {
    stopping = true;
    logger.info({ signal, workers: config.webConcurrency, graceSeconds: config.shutdownGrace }, 'stopping workers');
    signalWorkers('SIGTERM');
    stopDeadline(config, logger, () => signalWorkers('SIGKILL'));
  });
  for (let i = 0; i < config.webConcurrency; i += 1) fork();
  logger.info({ workers: config.webConcurrency, ...workerEnv }, 'started workers');
}

/**
 * A bug that escapes every handler still ends the process as node would (exit 1), but as one
 * JSON log line with its stack inside rather than node's multi-line print on stderr.
 */
function exitOnUncaughtErrors(logger: Logger): void {
  const fail = (error: unknown) => {
    logger.fatal({ err: error }, 'uncaught error; stopping');
    process.exit(1);
  };
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);
}

/** The only reader of process.env: configuration, then the issuer (or its workers), then signals. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env, process.cwd(), 'serve');
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`sigil: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger(config.logLevel);
  exitOnUncaughtErrors(logger);
  routeConsoleTo(logger);
  if (cluster.isPrimary && config.webConcurrency > 1) supervise(config, logger);
  else await serve(config, logger);
}

await main();
