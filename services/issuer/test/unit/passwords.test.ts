import { performance } from 'node:perf_hooks';

import { describe, expect, it } from '@jest/globals';
import argon2 from 'argon2';

import { argon2Concurrency, checkNewPassword, OWASP_ARGON2, PasswordHasher, PasswordHasherBusyError, PasswordPolicyError, QUEUED_PER_SLOT } from '../../src/domain/passwords.js';

describe('passwords (K1)', () => {
  const hasher = new PasswordHasher();

  it('hashes with argon2id at the OWASP parameters', async () => {
    const hash = await hasher.hash('correct horse battery');
    expect(hash).toMatch(/^\$argon2id\$v=19\$m=19456,p=1,t=2\$/u);
    expect(await hasher.verify(hash, 'correct horse battery')).toEqual({ valid: true, needsRehash: false });
    expect(await hasher.verify(hash, 'wrong horse battery')).toEqual({ valid: false, needsRehash: false });
  });

  it('when the parameters were raised, a successful check asks for a rehash', async () => {
    const old = await argon2.hash('correct horse battery', { type: argon2.argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 });
    const stronger = new PasswordHasher({ ...OWASP_ARGON2, timeCost: 3 });
    expect(await stronger.verify(old, 'correct horse battery')).toEqual({ valid: true, needsRehash: true });
  });

  it('when there is no user, still runs a verification and answers invalid', async () => {
    expect(await hasher.verify(undefined, 'anything at all')).toEqual({ valid: false, needsRehash: false });
  });

  it('runs at most `concurrency` computations at once, the others in turn, each with its own answer', async () => {
    const hash = await hasher.hash('correct horse battery');
    const original = argon2.verify;
    let inFlight = 0;
    let most = 0;
    argon2.verify = async (...args: Parameters<typeof argon2.verify>) => {
      inFlight += 1;
      most = Math.max(most, inFlight);
      try {
        return await original(...args);
      } finally {
        inFlight -= 1;
      }
    };
    try {
      const one = new PasswordHasher(OWASP_ARGON2, { concurrency: 1 });
      const checks = await Promise.all(['correct horse battery', 'wrong', 'correct horse battery'].map((password) => one.verify(hash, password)));
      expect(checks.map((check) => check.valid)).toEqual([true, false, true]);
      expect(most).toBe(1);
      most = 0;
      await Promise.all([1, 2, 3].map(() => hasher.verify(hash, 'correct horse battery')));
      expect(most).toBe(3);
    } finally {
      argon2.verify = original;
    }
  });

  it('counts the time its computations ran, summed over its slots: two verifications one after the other in one slot add up', async () => {
    const one = new PasswordHasher(OWASP_ARGON2, { concurrency: 1 });
    const hash = await one.hash('correct horse battery');
    const before = one.usage();
    expect(before).toMatchObject({ running: 0, slots: 1 });
    const started = performance.now();
    const pending = Promise.all([one.verify(hash, 'correct horse battery'), one.verify(hash, 'wrong')]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(one.usage().running).toBe(1);
    await pending;
    const elapsed = performance.now() - started;
    const after = one.usage();
    expect(after.running).toBe(0);
    // one slot, busy for (nearly) all of the time the two took one after the other
    expect(after.busyMs - before.busyMs).toBeGreaterThan(0.5 * elapsed);
    expect(after.busyMs - before.busyMs).toBeLessThanOrEqual(elapsed + 1);
  });

  it('when more verifications wait than it may queue, refuses the excess at once with PasswordHasherBusyError', async () => {
    const hash = await hasher.hash('correct horse battery');
    const saturated = new PasswordHasher(OWASP_ARGON2, { concurrency: 1, maxQueued: 2 });
    const finished: string[] = [];
    const attempts = Array.from({ length: 6 }, (_, i) =>
      saturated.verify(i === 5 ? undefined : hash, 'correct horse battery').then(
        (check) => finished.push(`verified ${check.valid}`),
        (error: unknown) => finished.push(error instanceof PasswordHasherBusyError ? 'busy' : `failed ${String(error)}`),
      ),
    );
    // the refusals are answered before the first admitted verification (1 running + 2 waiting) ends
    await Promise.race(attempts);
    expect(finished).toEqual(['busy', 'busy', 'busy']);
    await Promise.all(attempts);
    expect(finished).toEqual(['busy', 'busy', 'busy', 'verified true', 'verified true', 'verified true']);
    // once drained, it admits again; by default the queue is QUEUED_PER_SLOT per computation slot
    expect(await saturated.verify(hash, 'correct horse battery')).toEqual({ valid: true, needsRehash: false });
    const defaults = new PasswordHasher(OWASP_ARGON2, { concurrency: 1 });
    const admitted = await Promise.allSettled(Array.from({ length: 2 + QUEUED_PER_SLOT }, () => defaults.verify(hash, 'wrong')));
    expect(admitted.map((each) => each.status)).toEqual([...Array.from({ length: 1 + QUEUED_PER_SLOT }, () => 'fulfilled'), 'rejected']);
  });

  it('gives each process its share of the cores for argon2id, at least one', () => {
    expect(argon2Concurrency(2, 2)).toBe(1);
    expect(argon2Concurrency(2, 1)).toBe(2);
    expect(argon2Concurrency(8, 3)).toBe(2);
    expect(argon2Concurrency(2, 4)).toBe(1);
    expect(argon2Concurrency(4, 0)).toBe(4);
    // one libuv thread always left to the engine's signatures
    expect(argon2Concurrency(8, 1, 4)).toBe(3);
    expect(argon2Concurrency(2, 2, 2)).toBe(1);
    expect(argon2Concurrency(2, 1, 1)).toBe(1);
  });

  it('checks length limits before hashing', async () => {
    expect(() => checkNewPassword('short')).toThrow(PasswordPolicyError);
    expect(() => checkNewPassword('x'.repeat(1025))).toThrow('a password must be at most 1024 bytes');
    await expect(hasher.hash('é'.repeat(600))).rejects.toThrow(PasswordPolicyError);
    expect(() => checkNewPassword('eight ch')).not.toThrow();
  });
});
