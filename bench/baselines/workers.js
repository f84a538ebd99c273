// @ts-check
/** The process shape the baselines share with the issuer: `workers` node:cluster workers on one port. */
import cluster from 'node:cluster';

/**
 * In the primary (with more than one worker): forks `workers` workers, exits when one dies,
 * stops them on SIGTERM/SIGINT. Otherwise runs `serve` in this process.
 * @param {number} workers
 * @param {() => void} serve
 */
export function runWorkers(workers, serve) {
  if (!cluster.isPrimary || workers <= 1) {
    serve();
    return;
  }
  for (let i = 0; i < workers; i += 1) cluster.fork();
  cluster.on('exit', () => process.exit(1));
  for (const signal of /** @type {const} */ (['SIGTERM', 'SIGINT'])) {
    process.once(signal, () => {
      for (const worker of Object.values(cluster.workers ?? {})) worker?.kill('SIGTERM');
      process.exit(0);
    });
  }
}
