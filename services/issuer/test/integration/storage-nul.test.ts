import { randomUUID } from 'node:crypto';

import { describe, expect, it } from '@jest/globals';

import { UnstorableValueError } from '../../src/storage/text.js';
import { backends } from '../support/backends.js';
import { storageSuite } from '../support/storage.js';

const NUL = '\u0000';

/**
 * The second line behind the input gate (issue "Trust under hostile input", requirement 1):
 * whatever path the gate might miss, storage never sends PostgreSQL a value it cannot hold
 * (U+0000). The gate refuses every such request over HTTP first (integration/fuzz.test.ts), so
 * this line is checked on the stores themselves, on both back ends.
 */
describe.each(backends)('storage refuses what PostgreSQL cannot hold ($name)', (backend) => {
  const suite = storageSuite(backend);
  const expiresAt = new Date(Date.now() + 60_000);

  it('when a key looked up carries a NUL byte, finds nothing (no stored key can hold one), without a database error', async () => {
    const { payloads, clients } = suite.stores;
    await expect(payloads.find('Session', 'id', `s${NUL}`)).resolves.toBeUndefined();
    await expect(payloads.find('Interaction', 'uid', `u${NUL}`)).resolves.toBeUndefined();
    await expect(payloads.findRefreshToken(`rt${NUL}`, 10)).resolves.toBeUndefined();
    await expect(payloads.consume('AuthorizationCode', `c${NUL}`)).resolves.toBe(false);
    await expect(payloads.grantAlive(`g${NUL}`, new Date())).resolves.toBe(false);
    await expect(clients.find(`client${NUL}`)).resolves.toBeUndefined();
  });

  it('when a username or API key id looked up carries a NUL byte, users and API keys find nothing and change nothing, without a database error', async () => {
    const { users, apiKeys } = suite.stores;
    await users.insert({ id: randomUUID(), username: 'nul-olga', email: null, passwordHash: 'not-a-hash', roles: [] });
    await expect(users.findLoginCandidate(`nul-olga${NUL}`)).resolves.toBeUndefined();
    await expect(users.findByUsername(`nul-olga${NUL}`)).resolves.toBeUndefined();
    await expect(users.findByUsername(`NUL-OLGA${NUL}x`)).resolves.toBeUndefined();
    // byUsername's other users: each names no one
    await expect(users.replaceRoles(`nul-olga${NUL}`, [])).resolves.toBeUndefined();
    await expect(users.remove(`nul-olga${NUL}`)).resolves.toBeUndefined();
    await expect(users.setDisabled(`nul-olga${NUL}`, true)).resolves.toBeUndefined();
    await expect(users.setPassword(`nul-olga${NUL}`, 'other-hash')).resolves.toBeUndefined();
    await expect(apiKeys.find(`key${NUL}`)).resolves.toBeUndefined();
    // the clean name is untouched and still found
    await expect(users.findLoginCandidate('nul-olga')).resolves.toMatchObject({ username: 'nul-olga', disabled: false, passwordHash: 'not-a-hash' });
  });

  it('when a payload to store carries a NUL byte anywhere, refuses it as bad input and stores nothing', async () => {
    const { payloads } = suite.stores;
    const upsert = payloads.upsert({ type: 'Interaction', id: 'nul-interaction', payload: { params: { state: `s${NUL}` } }, expiresAt });
    await expect(upsert).rejects.toBeInstanceOf(UnstorableValueError);
    await expect(payloads.find('Interaction', 'id', 'nul-interaction')).resolves.toBeUndefined();
    await payloads.upsert({ type: 'Interaction', id: 'clean-interaction', payload: { params: { state: 's' } }, expiresAt });
    await expect(payloads.find('Interaction', 'id', 'clean-interaction')).resolves.toBeDefined();
  });
});
