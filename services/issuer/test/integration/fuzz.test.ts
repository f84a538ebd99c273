import { beforeAll, describe, expect, it } from '@jest/globals';

import { backends } from '../support/backends.js';
import { fuzz, fuzzRequests, prepareTarget, type FuzzTarget } from '../support/fuzz.js';
import { issuerSuite } from '../support/issuer.js';

/** How many requests and which seed: `scripts/fuzz.mjs --count N --seed S` runs this suite with others. */
const COUNT = Number(process.env['FUZZ_COUNT'] ?? 2000);
const SEED = Number(process.env['FUZZ_SEED'] ?? 20261201);

/**
 * The input gate (issue "Trust under hostile input", requirement 1): seeded malformed requests
 * over every endpoint and page (NUL and control bytes, invalid UTF-8, overlong and repeated
 * parameters, wrong content types, JSON bodies, broken Basic headers and cookies, huge headers,
 * odd methods, bad paths), aimed with real clients, a real user and live interactions.
 */
describe.each(backends)('seeded fuzzing of every endpoint and page ($name)', (backend) => {
  const suite = issuerSuite(backend);
  let target: FuzzTarget;

  beforeAll(async () => {
    target = await prepareTarget(suite.issuer.issuer, suite.issuer.stores);
  });

  it(`when ${COUNT} malformed requests arrive (seed ${SEED}), none is answered 5xx, every API error is RFC 6749 JSON and every page carries the security headers`, async () => {
    const result = await fuzz(suite.issuer.issuer, fuzzRequests(target, COUNT, SEED), 8);
    expect(result.sent).toBe(COUNT);
    expect(result.problems).toEqual([]);
  }, 240_000);
});
