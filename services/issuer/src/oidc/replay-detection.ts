import { hash } from 'node:crypto';

import type Provider from 'oidc-provider';

import type { PayloadStore } from '../storage/payloads.js';

/** The engine's model name for seen `jti`s (DPoP proofs, client assertions). */
const MODEL = 'ReplayDetection';

/**
 * The engine remembers the `jti` of every DPoP proof (RFC 9449 §11.1) and client assertion
 * (RFC 7523 §3) through `ReplayDetection.unique(iss, jti, exp)`, which finds and then saves: two
 * steps, so two replicas given the same proof at the same moment would both accept it
 * (docs/engine.md#dpop-and-replay-detection). Here it is one conditional insert in the shared
 * database instead (`PayloadStore.insertUnique`), under the id the engine would use, so exactly
 * one of them is told the `jti` is new.
 */
export function detectReplaysAtomically(provider: Provider, payloads: PayloadStore): void {
  provider.ReplayDetection.unique = async (iss: string, jti: string, exp: number): Promise<boolean> => {
    const id = hash('sha256', `${iss}${jti}`, 'base64url');
    const iat = Math.floor(Date.now() / 1000);
    return payloads.insertUnique({
      type: MODEL,
      id,
      payload: { kind: MODEL, jti: id, iss, iat, exp },
      // the engine passes the last second a proof or assertion with this jti could be accepted
      expiresAt: new Date(Math.max(exp, iat + 1) * 1000),
    });
  };
}
