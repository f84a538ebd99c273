import { createHash } from 'node:crypto';

import type Provider from 'oidc-provider';

import type { ReplayStore } from '../storage/replays.js';

/** One record per issuer and `jti`: the pair, unambiguously joined, hashed to a fixed length (any text, U+0000 included, hashes). */
function replayId(iss: string, jti: string): Buffer {
  return createHash('sha256').update(JSON.stringify([iss, jti])).digest();
}

/**
 * The engine remembers the `jti` of every JWT that must be used only once (client assertions,
 * RFC 7523 §3 item 7; DPoP proofs, RFC 9449 §11.1) through `ReplayDetection.unique(iss, jti,
 * exp)`, until `exp` (plus its clock tolerance). Its own version finds and then saves, two steps:
 * two replicas given the same assertion at the same moment could both accept it
 * (docs/engine.md#dpop-and-replay-detection). This one is a single conditional insert in the
 * shared database (`ReplayStore.firstUse`): of every request carrying that `jti`, on any replica,
 * exactly one is first; the rest are replays. The record goes with the sweep once expired.
 */
export function atomicReplayDetection(provider: Provider, replays: ReplayStore): void {
  provider.ReplayDetection.unique = async (iss: string, jti: string, exp: number) => {
    // the engine has checked exp; a value no date can hold is refused, never stored
    const expiresAt = new Date(exp * 1000);
    if (Number.isNaN(expiresAt.getTime())) return false;
    return replays.firstUse(replayId(iss, jti), expiresAt);
  };
}
