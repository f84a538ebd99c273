// @ts-check
/**
 * Credentials the load generator must sign for every request (DPoP proofs, client assertions),
 * made before the measured window. Signing them in line (autocannon's `setupRequest`) takes an
 * ECDSA signature of the generator's per request, on the same cores as the services measured:
 * it lowered the row's rate by a client's cost, not by the service's. Made ahead, the generator
 * costs what it does for a bearer or secret request, and the row's ratio is the service's own
 * cost; its CPU columns never counted the generator anyway.
 *
 * How many: the baseline row's rate over the whole run (warm-up included), with a margin; once
 * they run out, the rest are made in line as before, so a faster run is never refused.
 */

/**
 * @param {number} baselineRate requests/s of the row measured before, with the same shape
 * @param {{ seconds: number, warmupSeconds: number }} shape
 * @returns {number}
 */
export function madeAheadCount(baselineRate, shape) {
  return Math.ceil(baselineRate * (shape.seconds + shape.warmupSeconds) * 1.25) + 500;
}

/**
 * @template T
 * @param {number} count
 * @param {() => T} make
 * @returns {{ next: () => T, made: number, usedAhead: () => number }}
 */
export function madeAhead(count, make) {
  const values = Array.from({ length: count }, make);
  let used = 0;
  return {
    next: () => (used < values.length ? /** @type {T} */ (values[used++]) : make()),
    made: values.length,
    usedAhead: () => Math.min(used, values.length),
  };
}
