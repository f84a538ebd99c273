import { createHash } from 'node:crypto';

import { beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';

import { adapterFactory } from '../../src/oidc/adapter.js';
import { atomicReplayDetection } from '../../src/oidc/replay-detection.js';
import { backends } from '../support/backends.js';
import { storageSuite } from '../support/storage.js';

const nowSeconds = () => Math.floor(Date.now() / 1000);
const TABLE = 'replay_detections';

describe.each(backends)('replay detection of DPoP proofs and client assertions (S18) ($name)', (backend) => {
  const storage = storageSuite(backend);
  let provider: Provider;
  const expire = () => storage.database.knex(TABLE).update({ expires_at: new Date(Date.now() - 1000) });

  beforeAll(async () => {
    const { privateKey } = await generateKeyPair('RS256', { extractable: true });
    provider = new Provider('http://127.0.0.1:4000', {
      adapter: adapterFactory(storage.stores.payloads, async () => undefined),
      jwks: { keys: [{ ...(await exportJWK(privateKey)), alg: 'RS256', use: 'sig', kid: 'k' }] },
      features: { devInteractions: { enabled: false } },
    });
    atomicReplayDetection(provider, storage.stores.replays);
  });

  beforeEach(async () => {
    await storage.database.knex(TABLE).delete();
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
    expect(await storage.database.knex(TABLE)).toHaveLength(1);
  });

  it('when the remembered jti has expired, it may be used again, by exactly one of several racing (the proof carrying it is stale by then anyway)', async () => {
    expect(await provider.ReplayDetection.unique('client-a', 'jti-2', nowSeconds() + 1)).toBe(true);
    await expire();
    const answers = await Promise.all(Array.from({ length: 6 }, () => provider.ReplayDetection.unique('client-a', 'jti-2', nowSeconds() + 300)));
    expect(answers.filter(Boolean)).toHaveLength(1);
    expect(await provider.ReplayDetection.unique('client-a', 'jti-2', nowSeconds() + 300)).toBe(false);
    const [row] = await storage.database.knex(TABLE).select<{ expires_at: Date }[]>('expires_at');
    expect(row?.expires_at.getTime()).toBeGreaterThan(Date.now());
  });

  it('when a jti or client id holds U+0000 or is long, it is recorded all the same (hashed to 32 bytes); an exp no date can hold is refused and nothing is stored', async () => {
    const exp = nowSeconds() + 300;
    expect(await provider.ReplayDetection.unique('client\u0000a', 'jti\u0000', exp)).toBe(true);
    expect(await provider.ReplayDetection.unique('client\u0000a', 'jti\u0000', exp)).toBe(false);
    expect(await provider.ReplayDetection.unique('client-a', 'j'.repeat(10_000), exp)).toBe(true);
    expect(await provider.ReplayDetection.unique('client-a', 'jti-nan', Number.NaN)).toBe(false);
    // pg gives a Buffer, PGlite a Uint8Array
    const ids = (await storage.database.knex(TABLE).pluck<Uint8Array[]>('id')).map((id) => Buffer.from(id));
    expect(ids.map((id) => id.length)).toEqual([32, 32]);
    expect(ids.map((id) => id.toString('hex')).sort()).toEqual(
      [JSON.stringify(['client\u0000a', 'jti\u0000']), JSON.stringify(['client-a', 'j'.repeat(10_000)])].map((joined) => createHash('sha256').update(joined).digest('hex')).sort(),
    );
  });

  it('when swept, expired jtis are removed and live ones stay', async () => {
    await provider.ReplayDetection.unique('client-a', 'jti-3', nowSeconds() + 300);
    await expire();
    await provider.ReplayDetection.unique('client-a', 'jti-4', nowSeconds() + 300);
    expect(await storage.stores.replays.sweepExpired()).toBe(1);
    expect(await provider.ReplayDetection.unique('client-a', 'jti-4', nowSeconds() + 300)).toBe(false);
    expect(await storage.database.knex(TABLE)).toHaveLength(1);
  });
});
