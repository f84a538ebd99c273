import { createHash } from 'node:crypto';

import type Provider from 'oidc-provider';

import type { PayloadStore } from '../storage/payloads.js';
import { UnstorableValueError } from '../storage/text.js';

/** The engine's model name, and the rows' `type` in the payload store. */
const MODEL = 'ReplayDetection';

/** One row per issuer and `jti`: the pair, unambiguously joined, hashed to a fixed length. */
function replayId(iss: string, jti: string): string {
  return createHash('sha256').update(JSON.stringify([iss, jti])).digest('base64url');
}

/**
 * The engine remembers the `jti` of every JWT that must be used only once (client assertions,
 * RFC 7523 §3 item 7; DPoP proofs, RFC 9449 §11.1) through `ReplayDetection.unique(iss, jti,
 * exp)`, until `exp` (plus its clock tolerance). Its own version finds and then saves, two steps:
 * two replicas given the same assertion at the same moment could both accept it
 * (docs/engine.md#dpop-and-replay-detection). This one is a single conditional insert in the
 * shared database (`insertIfAbsent`): of every request carrying that `jti`, on any replica,
 * exactly one is first; the rest are replays. The row goes with the sweep once expired.
 */
export function atomicReplayDetection(provider: Provider, payloads: PayloadStore): void {
  provider.ReplayDetection.unique = async (iss: string, jti: string, exp: number) => {
    try {
      return await payloads.insertIfAbsent({ type: MODEL, id: replayId(iss, jti), payload: { iss }, expiresAt: new Date(exp * 1000) });
    } catch (error) {
      // an `iss` carrying U+0000 names no client, and was never seen: refused all the same
      if (error instanceof UnstorableValueError) return false;
      throw error;
    }
  };
}
