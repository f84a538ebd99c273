import { describe, expect, it } from '@jest/globals';
import argon2 from 'argon2';

import { checkNewPassword, OWASP_ARGON2, PasswordHasher, PasswordPolicyError } from '../../src/domain/passwords.js';

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

  it('checks length limits before hashing', async () => {
    expect(() => checkNewPassword('short')).toThrow(PasswordPolicyError);
    expect(() => checkNewPassword('x'.repeat(1025))).toThrow('a password must be at most 1024 bytes');
    await expect(hasher.hash('é'.repeat(600))).rejects.toThrow(PasswordPolicyError);
    expect(() => checkNewPassword('eight ch')).not.toThrow();
  });
});
