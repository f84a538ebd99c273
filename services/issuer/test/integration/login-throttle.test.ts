import { describe, expect, it } from '@jest/globals';

import { checkLoginAllowed, recordLoginFailure, recordLoginSuccess, THROTTLE_POLICY } from '../../src/domain/login-throttle.js';
import { backends } from '../support/backends.js';
import { storageSuite } from '../support/storage.js';

describe.each(backends)('login throttle policy ($name)', (backend) => {
  const storage = storageSuite(backend);
  const t0 = new Date('2026-11-29T10:00:00Z');
  const at = (seconds: number) => new Date(t0.getTime() + seconds * 1000);

  it('when one address fails for one account, locks from the 5th failure with doubling delays capped at 15 minutes', async () => {
    const attempt = { username: 'Bob', ip: '10.9.0.1' };
    const lockAfter: number[] = [];
    for (let i = 1; i <= 12; i += 1) {
      await recordLoginFailure(storage.stores.throttle, attempt, at(i));
      const decision = await checkLoginAllowed(storage.stores.throttle, attempt, at(i));
      lockAfter.push(decision.allowed ? 0 : decision.retryAfterSeconds);
    }
    expect(lockAfter).toEqual([0, 0, 0, 0, 30, 60, 120, 240, 480, 900, 900, 900]);
    // the username is matched case-insensitively; another address is not affected
    expect((await checkLoginAllowed(storage.stores.throttle, { username: 'bob', ip: '10.9.0.1' }, at(12))).allowed).toBe(false);
    expect((await checkLoginAllowed(storage.stores.throttle, { username: 'bob', ip: '10.9.0.2' }, at(12))).allowed).toBe(true);
    // locks end by themselves: no address can lock a user out forever
    expect((await checkLoginAllowed(storage.stores.throttle, attempt, at(12 + 901))).allowed).toBe(true);
  });

  it('when failures come from many addresses, the account locks briefly from the 20th', async () => {
    for (let i = 0; i < THROTTLE_POLICY.account.threshold; i += 1) {
      await recordLoginFailure(storage.stores.throttle, { username: 'carol', ip: `10.8.0.${i}` }, at(i));
    }
    const elsewhere = await checkLoginAllowed(storage.stores.throttle, { username: 'carol', ip: '10.7.7.7' }, at(20));
    expect(elsewhere).toEqual({ allowed: false, retryAfterSeconds: 60 - 1, accountCounted: true });
  });

  it('tells whether the account has failures counted, so that a success only writes when there is something to clear', async () => {
    const attempt = { username: 'erin', ip: '10.5.0.1' };
    expect(await checkLoginAllowed(storage.stores.throttle, attempt, at(0))).toEqual({ allowed: true, retryAfterSeconds: 0, accountCounted: false });
    // failures of the address alone (another account) are not the account's
    await recordLoginFailure(storage.stores.throttle, { username: 'someone-else', ip: attempt.ip }, at(1));
    expect((await checkLoginAllowed(storage.stores.throttle, attempt, at(2))).accountCounted).toBe(false);
    await recordLoginFailure(storage.stores.throttle, { username: 'ERIN', ip: '10.5.0.2' }, at(3));
    expect(await checkLoginAllowed(storage.stores.throttle, attempt, at(4))).toEqual({ allowed: true, retryAfterSeconds: 0, accountCounted: true });
    await recordLoginSuccess(storage.stores.throttle, attempt);
    expect((await checkLoginAllowed(storage.stores.throttle, attempt, at(5))).accountCounted).toBe(false);
  });

  it('when the window has passed, the count starts again; a success clears the account', async () => {
    const attempt = { username: 'dave', ip: '10.6.0.1' };
    for (let i = 0; i < 4; i += 1) await recordLoginFailure(storage.stores.throttle, attempt, at(i));
    await recordLoginFailure(storage.stores.throttle, attempt, at(THROTTLE_POLICY.windowSeconds + 10));
    expect((await checkLoginAllowed(storage.stores.throttle, attempt, at(THROTTLE_POLICY.windowSeconds + 10))).allowed).toBe(true);
    for (let i = 0; i < 4; i += 1) await recordLoginFailure(storage.stores.throttle, attempt, at(THROTTLE_POLICY.windowSeconds + 11 + i));
    expect((await checkLoginAllowed(storage.stores.throttle, attempt, at(THROTTLE_POLICY.windowSeconds + 15))).allowed).toBe(false);
    await recordLoginSuccess(storage.stores.throttle, attempt);
    expect((await checkLoginAllowed(storage.stores.throttle, attempt, at(THROTTLE_POLICY.windowSeconds + 15))).allowed).toBe(true);
  });
});
