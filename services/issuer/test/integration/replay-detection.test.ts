import { beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';

import { adapterFactory } from '../../src/oidc/adapter.js';
import { atomicReplayDetection } from '../../src/oidc/replay-detection.js';
import { backends } from '../support/backends.js';
import { storageSuite } from '../support/storage.js';

const nowSeconds = () => Math.floor(Date.now() / 1000);

describe.each(backends)('replay detection of DPoP proofs and client assertions (S18) ($name)', (backend) => {
  const storage = storageSuite(backend);
  let provider: Provider;

  beforeAll(async () => {
    const { privateKey } = await generateKeyPair('RS256', { extractable: true });
    provider = new Provider('http://127.0.0.1:4000', {
      adapter: adapterFactory(storage.stores.payloads, async () => undefined),
      jwks: { keys: [{ ...(await exportJWK(privateKey)), alg: 'RS256', use: 'sig', kid: 'k' }] },
      features: { devInteractions: { enabled: false } },
    });
    atomicReplayDetection(provider, storage.stores.payloads);
  });

  beforeEach(async () => {
    await storage.database.knex('oidc_payloads').where({ type: 'ReplayDetection' }).delete();
  });

  it('when a jti is seen twice, the second time is a replay; another issuer (client) with the same jti is not', async () => {
    const exp = nowSeconds() + 300;
    expect(await provider.ReplayDetection.unique('client-a', 'jti-1', exp)).toBe(true);
    expect(await provider.ReplayDetection.unique('client-a', 'jti-1', exp)).toBe(false);
    expect(await provider.ReplayDetection.unique('client-b', 'jti-1', exp)).toBe(true);
  });

  it('when 20 requests with the same jti race (on every connection of the pool), exactly one is told it is new', async () => {
    const exp = nowSeconds() + 300;
    const answers = await Promise.all(Array.from({ length: 20 }, () => provider.ReplayDetection.unique('client-a', 'raced-jti', exp)));
    expect(answers.filter(Boolean)).toHaveLength(1);
    const rows = await storage.database.knex('oidc_payloads').where({ type: 'ReplayDetection' });
    expect(rows).toHaveLength(1);
  });

  it('when the remembered jti has expired, it may be used again (the proof carrying it is stale by then anyway)', async () => {
    expect(await provider.ReplayDetection.unique('client-a', 'jti-2', nowSeconds() + 1)).toBe(true);
    await storage.database.knex('oidc_payloads').where({ type: 'ReplayDetection' }).update({ expires_at: new Date(Date.now() - 1000) });
    expect(await provider.ReplayDetection.unique('client-a', 'jti-2', nowSeconds() + 300)).toBe(true);
    expect(await provider.ReplayDetection.unique('client-a', 'jti-2', nowSeconds() + 300)).toBe(false);
  });

  it('when swept, expired jtis are removed with the other expired rows', async () => {
    await provider.ReplayDetection.unique('client-a', 'jti-3', nowSeconds() + 300);
    await storage.database.knex('oidc_payloads').where({ type: 'ReplayDetection' }).update({ expires_at: new Date(Date.now() - 1000) });
    await storage.stores.payloads.sweepExpired();
    expect(await storage.database.knex('oidc_payloads').where({ type: 'ReplayDetection' })).toHaveLength(0);
  });
});
