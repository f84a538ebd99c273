import { describe, expect, it } from '@jest/globals';

import { DpopNonces, DpopReplayCache, VerifierUnavailable } from '../src/index.js';

const START = Date.UTC(2026, 11, 1, 12);

describe('guard: the DPoP replay cache (RFC 9449 §11.1, R13)', () => {
  const frozen = () => {
    const clock = { now: START };
    return { clock, now: () => clock.now };
  };

  it('when a proof is used twice before it expires, the second use is a replay', () => {
    const { now } = frozen();
    const cache = new DpopReplayCache({ now });
    expect(cache.use('proof-1', START + 60_000)).toBe(true);
    expect(cache.use('proof-1', START + 60_000)).toBe(false);
    expect(cache.use('proof-2', START + 60_000)).toBe(true);
  });

  it('when its window has passed, the proof is forgotten: it is dropped as later proofs arrive', () => {
    const { clock, now } = frozen();
    const cache = new DpopReplayCache({ now });
    cache.use('old', START + 60_000);
    clock.now = START + 59_999;
    expect(cache.use('old', START + 60_000)).toBe(false);
    clock.now = START + 60_000;
    expect(cache.use('new', START + 120_000)).toBe(true);
    expect(cache.size).toBe(1);
    // the proof itself is refused as too old by then; were it not, its id would count again
    expect(cache.use('old', START + 120_000)).toBe(true);
  });

  it('when full of unexpired proofs, refuses a new one (503) rather than forget one early; a replay is still a replay; room comes back as they expire', () => {
    const { clock, now } = frozen();
    const cache = new DpopReplayCache({ maxEntries: 3, now });
    expect(['a', 'b', 'c'].map((id, i) => cache.use(id, START + 10_000 * (i + 1)))).toEqual([true, true, true]);
    expect(() => cache.use('d', START + 60_000)).toThrow(VerifierUnavailable);
    expect(cache.use('b', START + 60_000)).toBe(false);
    expect(cache.size).toBe(3);
    clock.now = START + 10_000;
    expect(cache.use('d', START + 60_000)).toBe(true);
    expect(cache.size).toBe(3);
    // a, expired, made the room; b, c and d are live, so the cache is full again
    expect(() => cache.use('e', START + 60_000)).toThrow(VerifierUnavailable);
  });

  it('when entries expire out of order, a full cache drops every expired one before refusing', () => {
    const { clock, now } = frozen();
    const cache = new DpopReplayCache({ maxEntries: 3, now });
    cache.use('long', START + 60_000);
    cache.use('short-1', START + 1_000);
    cache.use('short-2', START + 1_000);
    clock.now = START + 1_000;
    // the oldest entry is still live, so only a full sweep finds the expired ones behind it
    expect(cache.use('next', START + 61_000)).toBe(true);
    expect(cache.size).toBe(2);
  });

  it('holds at most maxEntries under a long run of fresh proofs, whatever their number', () => {
    const { clock, now } = frozen();
    const cache = new DpopReplayCache({ maxEntries: 100, now });
    for (let i = 0; i < 10_000; i += 1) {
      clock.now = START + i * 10;
      // each proof is accepted for 500 ms: 50 live at any time
      expect(cache.use(`proof-${i}`, clock.now + 500)).toBe(true);
      expect(cache.size).toBeLessThanOrEqual(100);
    }
    expect(cache.size).toBeLessThanOrEqual(51);
  });

  it('refuses a bound that is not a whole number of at least 1', () => {
    for (const maxEntries of [0, -1, 1.5, Number.NaN]) expect(() => new DpopReplayCache({ maxEntries })).toThrow(TypeError);
  });
});

describe('guard: DPoP server nonces (RFC 9449 §9, R12)', () => {
  const SECRET = 'a-secret-of-at-least-thirty-two-bytes!';

  it('when asked twice within a lifetime, hands out the same nonce; a new one after it, while the previous stays accepted for one more lifetime', () => {
    const clock = { now: START };
    const nonces = new DpopNonces({ secret: SECRET, lifetimeSeconds: 60, now: () => clock.now });
    const first = nonces.current();
    clock.now += 30_000;
    expect(nonces.current()).toBe(first);
    clock.now = START + 60_000;
    const second = nonces.current();
    expect(second).not.toBe(first);
    expect(nonces.accepts(first)).toBe(true);
    expect(nonces.accepts(second)).toBe(true);
    clock.now = START + 120_000;
    expect(nonces.accepts(first)).toBe(false);
    expect(nonces.accepts(second)).toBe(true);
  });

  it("when instances share the secret, each accepts the others' nonces; another secret's, a made-up one or none are refused", () => {
    const now = () => START;
    const one = new DpopNonces({ secret: SECRET, now });
    const two = new DpopNonces({ secret: SECRET, now });
    const other = new DpopNonces({ now });
    expect(two.accepts(one.current())).toBe(true);
    expect(two.accepts(other.current())).toBe(false);
    for (const nonce of ['', 'x', undefined, 42, `${one.current()}x`]) expect(one.accepts(nonce)).toBe(false);
  });

  it('refuses a secret shorter than 32 bytes and a lifetime under a second', () => {
    expect(() => new DpopNonces({ secret: 'short' })).toThrow(TypeError);
    expect(() => new DpopNonces({ lifetimeSeconds: 0 })).toThrow(TypeError);
  });
});
