// @ts-check
/**
 * Baseline (d): raw argon2id verifies per second on this machine, in a process of its own
 * whose libuv pool the bench sizes to the cores (UV_THREADPOOL_SIZE): the capacity the password
 * grant is compared with. Prints one JSON object (bench/lib/inprocess.js rawArgon2Verify).
 *
 *   UV_THREADPOOL_SIZE=<cores> node bench/baselines/argon2-capacity.js <memoryKib> <timeCost> <parallelism> <in flight> <ms>
 */
import { rawArgon2Verify } from '../lib/inprocess.js';

const [memoryKib, timeCost, parallelism, concurrency, ms] = process.argv.slice(2).map(Number);
if ([memoryKib, timeCost, parallelism, concurrency, ms].some((value) => value === undefined || !Number.isInteger(value) || value <= 0)) {
  process.stderr.write('argon2-capacity: five positive integers: memoryKib timeCost parallelism inFlight ms\n');
  process.exit(2);
}
const result = await rawArgon2Verify({ memoryKib: memoryKib ?? 0, timeCost: timeCost ?? 0, parallelism: parallelism ?? 0 }, concurrency ?? 0, ms ?? 0);
process.stdout.write(`${JSON.stringify({ ...result, uvThreadpoolSize: process.env['UV_THREADPOOL_SIZE'] ?? '4 (default)' })}\n`);
