// @ts-check
/**
 * `*_at_80`: a workload again at a fixed rate of 80 % of its peak row's req/s, for its latency
 * at that load. Open loop (lib/paced.js): requests fall due on a schedule and each latency counts
 * from the moment its request was due, so queueing shows. The target for these rows is a
 * p99 below 50 ms; it is reported, never enforced.
 */
import { measureAtRate } from '../lib/paced.js';
import { progress } from '../lib/log.js';
import { cpuProbes, timelineProbes } from '../setup.js';
import { ccWorkload } from './client-credentials.js';
import { addHttpRow, labelOf, skip } from './measure.js';
import { guardedOrdersWorkload } from './orders.js';

/** The fixed-rate workloads run at this fraction of the measured peak... */
export const FRACTION_OF_PEAK = 0.8;
/** ...and the target for them is p99 below this (reported, never enforced). */
export const P99_TARGET_MS = 50;

/**
 * The row of `workload` at FRACTION_OF_PEAK × the req/s of the row `peak` (its baseline, and a
 * row --only runs with it).
 * @param {{ id: string, label: string, peak: string, workload: (context: import('./measure.js').Context) => import('./measure.js').Workload }} fields
 * @returns {import('./measure.js').RowSpec}
 */
function atRate({ id, label, peak, workload }) {
  /** @type {import('./measure.js').RowSpec} */
  const spec = { id, label, baseline: peak, needs: peak, run: (context) => measureAtPeakFraction(context, spec, workload(context)) };
  return spec;
}

/**
 * @param {import('./measure.js').Context} context
 * @param {import('./measure.js').RowSpec} spec
 * @param {import('./measure.js').Workload} workload
 */
async function measureAtPeakFraction(context, spec, workload) {
  const peakId = spec.baseline ?? '';
  const peak = context.rows.find((row) => row.id === peakId);
  if (peak === undefined || !(peak.reqPerSec > 0)) {
    skip(context, spec.id, `no peak to take ${FRACTION_OF_PEAK * 100}% of (${peakId} did not run or served nothing)`);
    return;
  }
  const { shape } = context.options;
  const rate = Math.max(1, Math.round(peak.reqPerSec * FRACTION_OF_PEAK));
  progress(
    `${labelOf(spec, context.options)}: ${rate.toLocaleString('en-US')} req/s (${FRACTION_OF_PEAK * 100}% of ${Math.round(peak.reqPerSec).toLocaleString('en-US')}), ` +
      `paced, ${shape.warmupSeconds} s warm-up, ${shape.seconds} s measured, up to ${shape.connections} connections`,
  );
  const result = await measureAtRate({ ...workload, cpu: cpuProbes(context.stack, workload.url), timeline: timelineProbes(context.stack) }, { rate, ...shape });
  addHttpRow(context, spec, workload, result, {
    loadGenerator: 'bench/lib/paced.js: open loop at a fixed rate, latency from each request\'s due time',
    fractionOfPeak: FRACTION_OF_PEAK,
    peakReqPerSec: peak.reqPerSec,
    p99TargetMs: P99_TARGET_MS,
    p99Under50Ms: result.p99Ms < P99_TARGET_MS,
  });
}

export const clientCredentialsAt80 = atRate({
  id: 'client_credentials_at_80',
  label: `client credentials at ${FRACTION_OF_PEAK * 100}% of peak (paced)`,
  peak: 'client_credentials',
  workload: (context) => ccWorkload(context),
});

export const guardedOrdersAt80 = atRate({
  id: 'guarded_orders_at_80',
  label: `guarded GET /orders at ${FRACTION_OF_PEAK * 100}% of peak (paced)`,
  peak: 'guarded_orders',
  workload: guardedOrdersWorkload,
});
