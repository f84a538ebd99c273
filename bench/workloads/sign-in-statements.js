// @ts-check
/**
 * What a successful sign-in does around its argon2id verify, without the verify: the
 * throttle's reservation of the attempt (one atomic statement for its three keys), the user's
 * read, and the reservation's settlement (the account's counters cleared, the slots given back)
 * with the `login.success` audit event in the same statement, through the issuer's own stores and throttle functions
 * (services/issuer/dist: `createStores`, `reserveLoginAttempt`, `settleLoginAttempt`), in the
 * bench process against the bench's PostgreSQL, round-robin over the sign-in users from one
 * address as the password row signs them in. Its CPU per sign-in (the bench process's, which
 * does the issuer's part, and PostgreSQL's) is compared with a raw argon2id verify's: the
 * target is under 5 % of it (`details.fractionOfVerify`).
 */
import { URLSearchParams } from 'node:url';

import { byCommand, cpuPerRequest, readCpu } from '../lib/cpu.js';
import { inFlightFor } from '../lib/inprocess.js';
import { progress } from '../lib/log.js';
import { load } from '../lib/provision.js';
import { ISSUER_DIST } from '../setup.js';
import { addInProcessRow, labelOf, skip } from './measure.js';

/**
 * The parts of the issuer's build output used here (it has no .d.ts).
 * @typedef {{ decision: 'allowed' | 'busy' | 'locked' }} Reservation
 * @typedef {{
 *   users: { findLoginCandidate: (username: string) => Promise<{ id: string } | undefined> },
 *   throttle: unknown,
 * }} SignInStores
 * @typedef {import('../lib/provision.js').DbModule} DbModule
 * @typedef {{ createStores: (knex: unknown) => SignInStores }} StoresModule
 * @typedef {{
 *   reserveLoginAttempt: (throttle: unknown, attempt: { username: string, ip: string }) => Promise<Reservation>,
 *   settleLoginAttempt: (throttle: unknown, reservation: Reservation, outcome: 'success', options: { recorded: Record<string, unknown> }) => Promise<unknown>,
 * }} ThrottleModule
 */

/** The address of every attempt: the password row's requests all come from loopback. */
const ADDRESS = '127.0.0.1';

/** @type {import('./measure.js').RowSpec} */
export const signInStatements = {
  id: 'sign_in_statements',
  label: 'sign-in without argon2id: reservation, user, settlement with its audit event (in process, per sign-in)',
  baseline: 'raw_argon2id',
  needs: 'raw_argon2id',
  run: async (context) => {
    const { options, stack, requests } = context;
    if (options.embedded) {
      skip(context, signInStatements.id, 'the embedded database has a single owner process: the bench process cannot open it beside the issuer');
      return;
    }
    const { shape } = options;
    const { openDatabase } = /** @type {DbModule} */ (await load(ISSUER_DIST, 'storage/db.js'));
    const { createStores } = /** @type {StoresModule} */ (await load(ISSUER_DIST, 'storage/index.js'));
    const { reserveLoginAttempt, settleLoginAttempt } = /** @type {ThrottleModule} */ (await load(ISSUER_DIST, 'domain/login-throttle.js'));
    const database = await openDatabase({ databaseUrl: stack.issuerEnv['DATABASE_URL'], dataDir: stack.issuerEnv['DATA_DIR'] ?? '' });
    const stores = createStores(database.knex);
    const usernames = requests.passwordBodies.map((body) => new URLSearchParams(body).get('username') ?? '');
    let next = 0;
    let refused = 0;
    // signIn's statements for a right password (domain/sign-in.ts), in its order
    const signIn = async () => {
      const username = usernames[next % usernames.length] ?? '';
      next += 1;
      const reservation = await reserveLoginAttempt(stores.throttle, { username, ip: ADDRESS });
      if (reservation.decision !== 'allowed') {
        refused += 1;
        return;
      }
      const candidate = await stores.users.findLoginCandidate(username);
      if (candidate === undefined) throw new Error(`sign-in statements: no user ${username}`);
      await settleLoginAttempt(stores.throttle, reservation, 'success', { recorded: { event: 'login.success', username, clientId: 'bench-sign-in-statements', ip: ADDRESS, userId: candidate.id } });
    };
    progress(`${labelOf(signInStatements, options)}: ${shape.warmupSeconds} s warm-up, ${shape.seconds} s measured, ${shape.connections} in flight`);
    try {
      await inFlightFor(shape.warmupSeconds * 1000, shape.connections, signIn);
      refused = 0;
      const probes = [byCommand('postgres', 'postgres')];
      const before = readCpu(probes);
      const result = await inFlightFor(shape.seconds * 1000, shape.connections, signIn);
      // read before the pool closes: the CPU of a PostgreSQL backend that has ended is unknown
      const split = cpuPerRequest(before, readCpu(probes), result.ops);
      const perSignIn = split === null ? null : { benchProcess: split['loadGenerator'] ?? 0, postgres: split['postgres'] ?? 0 };
      const cpuMsPerOp = perSignIn === null ? null : perSignIn.benchProcess + perSignIn.postgres;
      const verify = context.rows.find((row) => row.id === 'raw_argon2id')?.cpuMsPerRequest ?? null;
      const fractionOfVerify = cpuMsPerOp === null || verify === null ? null : cpuMsPerOp / verify;
      addInProcessRow(context, signInStatements, { ...result, cpuMsPerOp }, { ...result, inFlight: shape.connections, users: usernames.length, refused, cpuMsPerRequest: perSignIn, fractionOfVerify });
      if (fractionOfVerify !== null) progress(`  ${(fractionOfVerify * 100).toFixed(1)} % of an argon2id verify's CPU per sign-in`);
    } finally {
      await database.close();
    }
  },
};
