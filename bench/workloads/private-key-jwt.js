// @ts-check
/**
 * The client credentials grant of a `private_key_jwt` client (RFC 7523 §2.2): every request
 * carries a fresh client assertion (ES256, a unique jti, exp 60 s ahead), signed here in the
 * load generator, so the row measures what the issuer adds for one: the signature check and the
 * jti's single insert into the replay store, against the secret client's `client_credentials`
 * row of the same run. The assertions are signed before the measured window (lib/made-ahead.js). The client is registered with the `sigil` CLI and its public key inline
 * (`--jwks-file`), so no jwks_uri is fetched during the run.
 */
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { asRecord, FORM, form } from '../lib/http.js';
import { madeAhead, madeAheadCount } from '../lib/made-ahead.js';
import { runNode } from '../lib/processes.js';
import { AUDIENCE, root } from '../setup.js';
import { check, measureHttp } from './measure.js';

const SIGIL_CLI = path.join(root, 'services/issuer/bin/sigil.js');
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const KID = 'bench-es256';

/** @param {string | Buffer} value */
const base64url = (value) => Buffer.from(value).toString('base64url');

/**
 * A P-256 key pair: the private key for the load generator, the public one as the JWK Set the
 * client is registered with.
 */
function keyPair() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privateKey, jwks: { keys: [{ ...publicKey.export({ format: 'jwk' }), kid: KID, alg: 'ES256', use: 'sig' }] } };
}

/**
 * Registers the client with the CLI against the stack's database, its key set in a file of the
 * run's own (removed at clean-up).
 * @param {import('../setup.js').Stack} stack
 * @param {unknown} jwks
 */
async function registerClient(stack, jwks) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sigil-bench-pkjwt-'));
  stack.session.onCleanUp(`temp dir ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'jwks.json');
  writeFileSync(file, JSON.stringify(jwks));
  const args = ['clients', 'create', '--name', 'bench-private-key-jwt', '--grant', 'client_credentials', '--scope', 'orders:read', '--resource', AUDIENCE];
  const created = asRecord(JSON.parse(await runNode(SIGIL_CLI, [...args, '--auth', 'private_key_jwt', '--jwks-file', file, '--json'], stack.issuerEnv)));
  return String(created['client_id']);
}

/**
 * A signer of fresh client assertions for `clientId`: synchronous (autocannon's setupRequest
 * builds each request in line when those made ahead run out), one ECDSA signature each, the JOSE
 * header encoded once; exp 120 s ahead, so that those made ahead outlive a full run.
 * @param {import('node:crypto').KeyObject} privateKey
 * @param {string} clientId
 * @param {string} audience the issuer identifier
 */
function assertionSigner(privateKey, clientId, audience) {
  const header = base64url(JSON.stringify({ alg: 'ES256', kid: KID, typ: 'JWT' }));
  return () => {
    const now = Math.floor(Date.now() / 1000);
    const payload = base64url(JSON.stringify({ iss: clientId, sub: clientId, aud: audience, iat: now, exp: now + 120, jti: randomBytes(16).toString('base64url') }));
    const input = `${header}.${payload}`;
    // JWS ES256 (RFC 7518 §3.4): the raw r || s, not DER
    return `${input}.${sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
  };
}

/** @type {import('./measure.js').RowSpec} */
export const clientCredentialsPrivateKeyJwt = {
  id: 'client_credentials_private_key_jwt',
  label: 'client credentials POST /token, private_key_jwt (a fresh ES256 assertion per request)',
  baseline: 'client_credentials',
  needs: 'client_credentials',
  run: async (context) => {
    const { stack } = context;
    const { privateKey, jwks } = keyPair();
    const clientId = await registerClient(stack, jwks);
    const assertion = assertionSigner(privateKey, clientId, stack.urls.issuer);
    const body = () => form({ grant_type: 'client_credentials', scope: 'orders:read', client_id: clientId, client_assertion_type: JWT_BEARER, client_assertion: assertion() });
    await check(context.preflight, clientCredentialsPrivateKeyJwt.id, stack.endpoints.token, { method: 'POST', headers: { 'content-type': FORM }, body: body() });
    const secret = context.rows.find((row) => row.id === 'client_credentials');
    const bodies = madeAhead(madeAheadCount(secret?.reqPerSec ?? 3_000, context.options.shape), body);
    await measureHttp(
      context,
      clientCredentialsPrivateKeyJwt,
      {
        url: stack.endpoints.token,
        method: 'POST',
        headers: { 'content-type': FORM },
        body: body(),
        setupRequest: (request) => ({ ...request, body: bodies.next() }),
      },
      {
        assertion: 'ES256, P-256 key inline (--jwks-file), exp 120 s, a unique jti per request, signed in the load generator before the measured window',
        comparedWith: 'client_credentials (client_secret_basic)',
        assertionsMadeAhead: bodies.made,
        get assertionsUsedAhead() {
          return bodies.usedAhead();
        },
      },
    );
  },
};
