// @ts-check
/**
 * The refresh grant on oidc-provider alone, against its own client credentials token: what a
 * refresh with rotation costs the engine itself, in memory, without Sigil's storage around it
 * (bench/README.md "The refresh row"). No database.
 *
 *   node bench/engine-refresh.js [--seconds S] [--warm S] [--connections N] [--rounds N]
 *
 * One bare engine process (baselines/bare-engine.js, WORKERS=1: a refresh token lives in the
 * memory of the process that issued it) with its refresh client; a pool of refresh tokens it
 * issued (`POST /bench/refresh-tokens`), each rotated one put back, as the bench's `refresh`
 * row does with Sigil's. Each round measures client credentials, then refresh, each `--warm`
 * seconds (default 3) then `--seconds` (default 10) with `--connections` in flight (default
 * 16), and prints the CPU per request of both and their ratio; `--rounds` (default 2)
 * alternates them on the same process.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { asRecord, basic, FORM, form, once } from './lib/http.js';
import { measure } from './lib/load.js';
import { processGroup } from './lib/cpu.js';
import { parseFlags, positiveFlag } from './lib/flags.js';
import { progress } from './lib/log.js';
import { freePort, startChild, stopChild, waitForOk } from './lib/processes.js';
import { AUDIENCE, here } from './setup.js';

const usage = 'usage: node bench/engine-refresh.js [--seconds S] [--warm S] [--connections N] [--rounds N]';

function options() {
  const values = parseFlags(usage, { seconds: { type: 'string' }, warm: { type: 'string' }, connections: { type: 'string' }, rounds: { type: 'string' } });
  return {
    shape: { seconds: positiveFlag(values.seconds, 10, 'seconds', usage), warmupSeconds: positiveFlag(values.warm, 3, 'warm', usage), connections: positiveFlag(values.connections, 16, 'connections', usage) },
    rounds: positiveFlag(values.rounds, 2, 'rounds', usage),
  };
}

/** The refresh token of a token answer. @param {string} text */
const refreshTokenOf = (text) => asRecord(JSON.parse(text))['refresh_token'];

/**
 * @param {string} origin
 * @param {string} authorization the refresh client's
 * @param {string[]} pool refresh tokens not sent yet (LIFO, as the bench's `refresh` row)
 * @param {import('./lib/cpu.js').CpuProbe[]} cpu
 * @returns {import('./lib/load.js').Workload}
 */
function refreshWorkload(origin, authorization, pool, cpu) {
  return {
    url: `${origin}/token`,
    method: 'POST',
    headers: { authorization, 'content-type': FORM },
    setupRequest: (request) => ({ ...request, body: form({ grant_type: 'refresh_token', refresh_token: pool.pop() ?? 'bench-refresh-pool-empty' }) }),
    onResponse: (status, body) => {
      const rotated = status === 200 ? refreshTokenOf(body) : undefined;
      if (typeof rotated === 'string') pool.push(rotated);
    },
    cpu,
  };
}

/** @param {string} name @param {import('./lib/load.js').Measured} measured */
function line(name, measured) {
  const cpu = measured.cpuMsPerRequest?.['server'];
  if (measured.non2xx > 0 || measured.errors > 0) throw new Error(`${name}: ${measured.non2xx} non-2xx answers, ${measured.errors} errors (${JSON.stringify(measured.non2xxSamples)})`);
  return { name, perSecond: Math.round(measured.reqPerSec), cpuMsPerRequest: cpu === undefined ? null : Number(cpu.toFixed(3)) };
}

async function main() {
  const { shape, rounds } = options();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sigil-engine-refresh-'));
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const cc = { id: `cc-${randomBytes(4).toString('hex')}`, secret: randomBytes(24).toString('base64url') };
  const refresh = { id: `refresh-${randomBytes(4).toString('hex')}`, secret: randomBytes(24).toString('base64url') };
  const env = { PORT: String(port), WORKERS: '1', CLIENT_ID: cc.id, CLIENT_SECRET: cc.secret, REFRESH_CLIENT_ID: refresh.id, REFRESH_CLIENT_SECRET: refresh.secret, AUDIENCE };
  const child = startChild('bare-engine-refresh', path.join(here, 'baselines/bare-engine.js'), env, dir);
  try {
    await waitForOk(`${origin}/.well-known/openid-configuration`, child);
    const pid = child.process.pid;
    const cpu = pid === undefined ? [] : [processGroup('server', pid)];
    const issued = await once(`${origin}/bench/refresh-tokens?count=${4 * shape.connections}`, { method: 'POST' });
    if (!issued.ok) throw new Error(`the engine issued no refresh tokens: ${issued.status} ${issued.text.slice(0, 300)}`);
    /** @type {string[]} */
    const pool = /** @type {unknown[]} */ (JSON.parse(issued.text)).map(String);
    const ccWorkload = { url: `${origin}/token`, method: 'POST', headers: { authorization: basic(cc.id, cc.secret), 'content-type': FORM }, body: form({ grant_type: 'client_credentials', scope: 'orders:read' }), cpu };
    for (let round = 1; round <= rounds; round += 1) {
      progress(`round ${round}: client credentials, then refresh (${shape.warmupSeconds} s warm-up, ${shape.seconds} s measured, ${shape.connections} connections)`);
      const tokens = line('client_credentials', await measure(ccWorkload, shape));
      const refreshed = line('refresh', await measure(refreshWorkload(origin, basic(refresh.id, refresh.secret), pool, cpu), shape));
      const ratio = tokens.cpuMsPerRequest !== null && refreshed.cpuMsPerRequest !== null ? Number((tokens.cpuMsPerRequest / refreshed.cpuMsPerRequest).toFixed(2)) : null;
      const row = { round, clientCredentials: tokens, refresh: refreshed, refreshPerSecondOverClientCredentials: Number((refreshed.perSecond / tokens.perSecond).toFixed(2)), cpuRatio: ratio };
      process.stdout.write(`${JSON.stringify(row)}\n`);
    }
  } finally {
    await stopChild(child);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((/** @type {unknown} */ error) => {
  process.stderr.write(`bench/engine-refresh: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
