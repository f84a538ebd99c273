import { errors } from 'oidc-provider';

import type { PayloadStore } from '../storage/payloads.js';

/**
 * A second use of a single-use instance (an authorization code, RFC 6749 §4.1.2; a spent
 * refresh token, RFC 9700 §4.14.2): the whole grant is revoked and the request refused.
 */
export async function refuseReuse(payloads: PayloadStore, type: string, id: string): Promise<never> {
  await payloads.revokeGrantOf(type, id);
  throw new errors.InvalidGrant(`${type === 'RefreshToken' ? 'refresh token' : 'grant'} already used`);
}

/** Consumes a single-use instance now; of two racing requests exactly one succeeds, the other is a reuse. */
export async function consumeSingleUse(payloads: PayloadStore, type: string, id: string): Promise<void> {
  if (!(await payloads.consume(type, id))) await refuseReuse(payloads, type, id);
}
