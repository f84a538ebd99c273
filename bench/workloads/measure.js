// @ts-check
/**
 * What the workload modules share: the run's options and context, a row of the table, the
 * preflight check, skipping a row, and measuring an HTTP workload into a row.
 */
import { once } from '../lib/http.js';
import { measure } from '../lib/load.js';
import { progress } from '../lib/log.js';
import { cpuProbes } from '../setup.js';

/**
 * @typedef {object} Options the run's flags, and what follows from them
 * @property {boolean} quick
 * @property {boolean} embedded
 * @property {number} workers the issuer's WEB_CONCURRENCY
 * @property {boolean} profile
 * @property {(rowId: string) => boolean} selected whether a row runs (--only, and the rows those need)
 * @property {number} manyClients how many clients the many-clients workload spreads its requests over
 * @property {{ connections: number, seconds: number, warmupSeconds: number }} shape every HTTP workload's
 */

/**
 * @typedef {object} Row a row of the table and of latest.json's `workloads`
 * @property {string} id
 * @property {string} workload
 * @property {'http' | 'in-process'} kind
 * @property {number} reqPerSec requests/s (http) or operations/s (in-process)
 * @property {number | null} p50Ms
 * @property {number | null} p99Ms
 * @property {number | null} non2xx
 * @property {number | null} errors
 * @property {string | null} baseline id of the row it is compared with
 * @property {number | null} ratio reqPerSec / the baseline's
 * @property {number | null} cpuMsPerRequest CPU ms per request of the serving processes plus PostgreSQL's (per operation for in-process rows); null without /proc
 * @property {number | null} cpuRatio the baseline's cpuMsPerRequest / this row's (like ratio, above 1 means cheaper than the baseline)
 * @property {Record<string, unknown>} [details]
 */

/** @typedef {Record<string, { status: number, body?: string }>} Preflight the answer to one request of each kind, before any load */

/**
 * @typedef {object} Context what a row's run reads and adds to
 * @property {Options} options
 * @property {import('../setup.js').Stack} stack
 * @property {import('./prepare.js').Requests} requests
 * @property {Preflight} preflight
 * @property {import('./refresh.js').RefreshPool} refresh
 * @property {Row[]} rows the rows measured so far, in run order
 * @property {{ id: string, reason: string }[]} skipped rows that were asked for but could not run here, and why
 */

/**
 * @typedef {object} RowSpec one row of the plan: what --only and the report need, and how it runs
 * @property {string} id the `id` column of latest.json, as --only takes it
 * @property {string | ((options: Options) => string)} label the `workload` column
 * @property {string | null} baseline the id of the row it is compared with
 * @property {string} [needs] a row it cannot do without (its rate, or the point of its ratio): --only runs it too
 * @property {(context: Context) => Promise<void>} run measures the row and adds it to `context.rows`
 */

/** @typedef {import('../lib/load.js').Workload} Workload */

/** @param {RowSpec} spec @param {Options} options */
export const labelOf = (spec, options) => (typeof spec.label === 'function' ? spec.label(options) : spec.label);

/**
 * One request outside the load, its answer kept in the preflight (its body too, for a failure).
 * @param {Preflight} preflight
 * @param {string} name
 * @param {string} url
 * @param {import('../lib/http.js').RequestInit} [init]
 */
export async function check(preflight, name, url, init) {
  const answer = await once(url, init);
  preflight[name] = answer.ok ? { status: answer.status } : { status: answer.status, body: answer.text.slice(0, 500) };
  if (!answer.ok) progress(`preflight ${name}: ${answer.status} ${answer.text.slice(0, 300)}`);
  return answer;
}

/** @param {Context} context @param {string} rowId @param {string} reason */
export function skip(context, rowId, reason) {
  context.skipped.push({ id: rowId, reason });
  progress(`${rowId}: skipped: ${reason}`);
}

/**
 * @param {string} label
 * @param {{ non2xx: number, errors: number, statusCodes: Record<string, number>, non2xxSamples: { status: number, body: string }[], warmup: { non2xx: number, errors: number } }} result
 */
function reportFailures(label, result) {
  if (result.non2xx > 0 || result.errors > 0 || result.warmup.non2xx > 0 || result.warmup.errors > 0) {
    progress(`  ${label}: non-2xx ${result.non2xx} (warm-up ${result.warmup.non2xx}), errors ${result.errors} (warm-up ${result.warmup.errors}), statuses ${JSON.stringify(result.statusCodes)}`);
    for (const sample of result.non2xxSamples) progress(`    ${sample.status} ${sample.body}`);
  }
}

/**
 * A row's CPU figure: the serving processes' and PostgreSQL's ms per request (the load generator's apart).
 * @param {Record<string, number> | null} perRequest
 */
const cpuTotal = (perRequest) => (perRequest === null ? null : (perRequest['server'] ?? 0) + (perRequest['postgres'] ?? 0));

/**
 * Adds the row of an HTTP workload (full load or paced) and reports its failures.
 * @param {Context} context
 * @param {RowSpec} spec
 * @param {Workload} workload
 * @param {import('../lib/load.js').Measured | import('../lib/paced.js').PacedMeasured} result
 * @param {Record<string, unknown>} extra added to the row's details
 */
export function addHttpRow(context, spec, workload, result, extra) {
  const label = labelOf(spec, context.options);
  context.rows.push({
    id: spec.id,
    workload: label,
    kind: 'http',
    reqPerSec: result.reqPerSec,
    p50Ms: result.p50Ms,
    p99Ms: result.p99Ms,
    non2xx: result.non2xx,
    errors: result.errors,
    baseline: spec.baseline,
    ratio: null,
    cpuMsPerRequest: cpuTotal(result.cpuMsPerRequest),
    cpuRatio: null,
    details: { ...result, url: workload.url, method: workload.method ?? 'GET', ...extra },
  });
  reportFailures(label, result);
}

/**
 * The row of an in-process baseline (operations/s; no HTTP, so no statuses).
 * @param {Context} context
 * @param {RowSpec} spec
 * @param {{ opsPerSec: number, cpuMsPerOp: number | null, p50Ms?: number, p99Ms?: number }} result
 * @param {Record<string, unknown>} details
 */
export function addInProcessRow(context, spec, result, details) {
  context.rows.push({
    id: spec.id,
    workload: labelOf(spec, context.options),
    kind: 'in-process',
    reqPerSec: result.opsPerSec,
    p50Ms: result.p50Ms ?? null,
    p99Ms: result.p99Ms ?? null,
    non2xx: null,
    errors: null,
    baseline: spec.baseline,
    ratio: null,
    cpuMsPerRequest: result.cpuMsPerOp,
    cpuRatio: null,
    details,
  });
}

/**
 * Measures `workload` at full load (autocannon: a warm-up, then the measured run) into the row of `spec`.
 * @param {Context} context
 * @param {RowSpec} spec
 * @param {Workload} workload
 * @param {Record<string, unknown>} [extra] added to the row's details
 */
export async function measureHttp(context, spec, workload, extra = {}) {
  const { shape } = context.options;
  progress(`${labelOf(spec, context.options)}: ${shape.warmupSeconds} s warm-up, ${shape.seconds} s measured, ${shape.connections} connections`);
  const result = await measure({ ...workload, cpu: cpuProbes(context.stack, workload.url) }, shape);
  addHttpRow(context, spec, workload, result, extra);
}

/**
 * A row that is one HTTP workload at full load.
 * @param {Omit<RowSpec, 'run'> & { workload: (context: Context) => Workload }} fields
 * @returns {RowSpec}
 */
export function httpRow({ workload, ...fields }) {
  /** @type {RowSpec} */
  const spec = { ...fields, run: (context) => measureHttp(context, spec, workload(context)) };
  return spec;
}
