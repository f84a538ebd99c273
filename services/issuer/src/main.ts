import cluster from 'node:cluster';
import os from 'node:os';

import { ConfigError, loadConfig, type Config } from './config.js';
import { argon2Concurrency } from './domain/passwords.js';
import { KeyStoreError } from './keys/key-store.js';
import { createLogger, type Logger } from './logger.js';
import { DataDirInUseError } from './storage/embedded-lock.js';

/** A worker that dies this soon after it was started is failing to start: stop, don't loop. */
const STARTUP_GRACE_MS = 10_000;

function onSignals(stop: (signal: NodeJS.Signals) => void): void {
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

/** The one line for a port the issuer cannot listen on (in use, or privileged), or undefined for any other failure. */
function listenFailureMessage(error: unknown, port: number): string | undefined {
  const code = (error as { code?: unknown }).code;
  if (code === 'EADDRINUSE') return `port ${port} is in use by another process (PORT)`;
  if (code === 'EACCES') return `not allowed to listen on port ${port} (PORT)`;
  return undefined;
}

/** One issuer in this process (the only one, or a cluster worker). */
async function serve(config: Config, logger: Logger): Promise<void> {
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
    logger.info({ signal }, 'stopping');
    issuer.close().then(
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

/** WEB_CONCURRENCY workers share the port; a worker that crashes later is replaced. */
function supervise(config: Config, logger: Logger): void {
  const startedAt = new Map<number, number>();
  let stopping = false;
  const workerEnv =
    process.env['UV_THREADPOOL_SIZE'] === undefined ? { UV_THREADPOOL_SIZE: String(threadsPerWorker(os.availableParallelism(), config.webConcurrency)) } : {};
  const fork = () => {
    const worker = cluster.fork(workerEnv);
    startedAt.set(worker.id, Date.now());
  };
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    const lived = Date.now() - (startedAt.get(worker.id) ?? 0);
    if (lived < STARTUP_GRACE_MS && code !== 0) {
      logger.fatal({ worker: worker.id, code, signal }, 'a worker failed to start; stopping');
      stopping = true;
      for (const other of Object.values(cluster.workers ?? {})) other?.kill('SIGTERM');
      process.exitCode = 1;
      return;
    }
    logger.error({ worker: worker.id, code, signal }, 'worker exited; starting another');
    fork();
  });
  onSignals((signal) => {
    stopping = true;
    logger.info({ signal, workers: config.webConcurrency }, 'stopping workers');
    for (const worker of Object.values(cluster.workers ?? {})) worker?.kill('SIGTERM');
  });
  for (let i = 0; i < config.webConcurrency; i += 1) fork();
  logger.info({ workers: config.webConcurrency, ...workerEnv }, 'started workers');
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
  if (cluster.isPrimary && config.webConcurrency > 1) supervise(config, logger);
  else await serve(config, logger);
}

await main();
