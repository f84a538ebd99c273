// @ts-check
/** The process shape the baselines share with the issuer: `workers` node:cluster workers on one port. */
import cluster from 'node:cluster';

/**
 * In the primary (with more than one worker): forks `workers` workers, exits when one dies,
 * stops them on SIGTERM/SIGINT and exits when they have. Otherwise runs `serve` in this process.
 * @param {number} workers
 * @param {() => void} serve
 */
export function runWorkers(workers, serve) {
  if (!cluster.isPrimary || workers <= 1) {
    serve();
    return;
  }
  let stopping = false;
  for (let i = 0; i < workers; i += 1) cluster.fork();
  cluster.on('exit', () => {
    if (!stopping) process.exit(1);
    // stopping: leave once the last worker has gone (a profiled worker writes its profile as it exits)
    else if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
  });
  for (const signal of /** @type {const} */ (['SIGTERM', 'SIGINT'])) {
    process.once(signal, () => {
      stopping = true;
      for (const worker of Object.values(cluster.workers ?? {})) worker?.kill('SIGTERM');
    });
  }
}

/**
 * In a serving process: closes `server` on SIGTERM/SIGINT, then exits. `on`, not `once`: a worker
 * gets its group's signal and then its primary's, and a second default-handled SIGTERM would end
 * it before it writes its --cpu-prof profile.
 * @param {import('node:net').Server} server
 */
export function closeOnSignals(server) {
  let closing = false;
  for (const signal of /** @type {const} */ (['SIGTERM', 'SIGINT'])) {
    process.on(signal, () => {
      if (closing) return;
      closing = true;
      server.close(() => process.exit(0));
    });
  }
}
