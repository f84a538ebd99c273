// @ts-check
/**
 * orders-api's guarded `GET /orders` with a DPoP-bound access token (RFC 9449): every request
 * carries a proof made for it (its own `jti`, `iat`, `ath`), which the guard verifies (an ES256
 * signature, the claims, the key's thumbprint against `cnf.jkt`) and remembers (its replay
 * cache); the token itself is served from the verified-token cache as a bearer token is. Its
 * baseline is the bearer row of the same run, so its ratio is the cost of DPoP on the
 * per-request path. The proofs are signed before the measured window (lib/made-ahead.js).
 */
import { createHash, generateKeyPairSync, randomUUID, sign } from 'node:crypto';

import { asRecord, once } from '../lib/http.js';
import { madeAhead, madeAheadCount } from '../lib/made-ahead.js';
import { check, measureHttp } from './measure.js';

/**
 * A client's ES256 key and a signer of DPoP proofs (RFC 9449 §4.2) with it, synchronous and
 * cheap enough to run in autocannon's `setupRequest` for every request: node:crypto signs
 * (P-256, IEEE P1363 signatures), the header is encoded once.
 */
function dpopSigner() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const { kty, crv, x, y } = /** @type {{ kty: string, crv: string, x: string, y: string }} */ (publicKey.export({ format: 'jwk' }));
  const header = Buffer.from(JSON.stringify({ typ: 'dpop+jwt', alg: 'ES256', jwk: { kty, crv, x, y } })).toString('base64url');
  /**
   * @param {string} htm
   * @param {string} htu
   * @param {string} [ath] base64url SHA-256 of the access token, for a resource request
   */
  return (htm, htu, ath) => {
    const claims = { htm, htu, iat: Math.floor(Date.now() / 1000), jti: randomUUID(), ...(ath === undefined ? {} : { ath }) };
    const input = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
    return `${input}.${sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
  };
}

/** @type {import('./measure.js').RowSpec} */
export const guardedOrdersDpop = {
  id: 'guarded_orders_dpop',
  label: 'guarded GET /orders (DPoP: a fresh proof per request)',
  baseline: 'guarded_orders',
  needs: 'guarded_orders',
  async run(context) {
    const { stack, requests } = context;
    const proof = dpopSigner();
    const answer = await once(stack.endpoints.token, { ...requests.cc, headers: { ...requests.cc.headers, dpop: proof('POST', stack.endpoints.token) } });
    const body = asRecord(JSON.parse(answer.text));
    if (!answer.ok || body['token_type'] !== 'DPoP') throw new Error(`DPoP-bound token request failed: ${answer.status} ${answer.text.slice(0, 300)}`);
    const token = String(body['access_token']);
    const url = `${stack.urls.orders}/orders`;
    const ath = createHash('sha256').update(token).digest('base64url');
    await check(context.preflight, 'guarded_orders_dpop', url, { headers: { authorization: `DPoP ${token}`, dpop: proof('GET', url, ath) } });
    const bearer = context.rows.find((row) => row.id === 'guarded_orders');
    const proofs = madeAhead(madeAheadCount(bearer?.reqPerSec ?? 10_000, context.options.shape), () => proof('GET', url, ath));
    await measureHttp(
      context,
      guardedOrdersDpop,
      {
        url,
        headers: { authorization: `DPoP ${token}` },
        setupRequest: (request) => ({ ...request, headers: { ...request.headers, dpop: proofs.next() } }),
      },
      { proofAlg: 'ES256', proofPerRequest: true, proofsMadeAhead: proofs.made, get proofsUsedAhead() {
          return proofs.usedAhead();
        } },
    );
  },
};
