import { describe, expect, it } from '@jest/globals';

import { createHash, createPrivateKey, generateKeyPairSync, randomUUID, sign, type JsonWebKey, type KeyObject } from 'node:crypto';

import { calculateJwkThumbprint, CompactSign, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';

import { createDpopProofVerifier, InvalidDpopProof, UseDpopNonce, type DpopOptions } from '../src/index.js';

/** The verifier's clock: proofs are made for it, so that no test depends on the time it runs. */
const NOW = Date.UTC(2026, 11, 1, 12);
const NOW_SECONDS = NOW / 1000;
const URL_ = 'https://orders.example.com/orders';
const TOKEN = 'an-access-token';
const ATH = createHash('sha256').update(TOKEN).digest('base64url');
const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

interface ProofKey {
  readonly alg: string;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
  readonly thumbprint: string;
}

/** A client's proof key, made by jose (an implementation independent of the guard's node:crypto checks). */
async function proofKey(alg: string, options: { modulusLength?: number; crv?: string } = {}): Promise<ProofKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { ...options, extractable: true });
  const publicJwk = await exportJWK(publicKey);
  return { alg, privateKey, publicJwk, thumbprint: await calculateJwkThumbprint(publicJwk) };
}

/** The claims of a valid proof for GET {@link URL_} with {@link TOKEN}, at {@link NOW}. */
const claims = (override: Record<string, unknown> = {}) => ({ htm: 'GET', htu: URL_, ath: ATH, jti: randomUUID(), iat: NOW_SECONDS, ...override });

/** A proof signed by `key` with jose, its header and claims as a test sets them. */
function proof(key: ProofKey, override: Record<string, unknown> = {}, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims(override)).setProtectedHeader({ alg: key.alg, typ: 'dpop+jwt', jwk: key.publicJwk, ...header }).sign(key.privateKey);
}

/** The node KeyObject of a jose private key, to sign what jose will not. */
const privateKeyObject = async (key: ProofKey): Promise<KeyObject> => createPrivateKey({ key: (await exportJWK(key.privateKey)) as JsonWebKey, format: 'jwk' });

const verifier = (options: DpopOptions = {}) => createDpopProofVerifier({ ...options, now: () => NOW });
const request = (dpop: string, method = 'GET', url = URL_) => ({ proof: dpop, method, url });

/** The reason `dpop` is refused with (an InvalidDpopProof), or undefined when accepted. */
async function refusal(verify: Promise<void>): Promise<string | undefined> {
  try {
    await verify;
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidDpopProof);
    return (error as Error).message;
  }
}

describe('guard: DPoP proofs verified with node:crypto (RFC 9449 §4.3)', () => {
  it.each([
    ['ES256', {}],
    ['ES384', {}],
    ['ES512', {}],
    ['EdDSA', {}],
    ['Ed25519', {}],
    ['RS256', {}],
    ['RS512', {}],
    ['PS256', {}],
    ['PS384', { modulusLength: 3072 }],
  ])('when a proof is signed with %s, an allowed alg, it is accepted; the same proof again is a replay; a fresh one with the same header passes', async (alg, options) => {
    const key = await proofKey(alg, options);
    const proofs = verifier({ algorithms: [alg] });
    const first = await proof(key);
    expect(await refusal(proofs.verify(request(first), TOKEN, key.thumbprint))).toBeUndefined();
    expect(await refusal(proofs.verify(request(first), TOKEN, key.thumbprint))).toMatch(/^the proof was used before/u);
    expect(await refusal(proofs.verify(request(await proof(key)), TOKEN, key.thumbprint))).toBeUndefined();
  });

  it('when a proof is signed with EdDSA by an Ed448 key, it is accepted; under Ed25519 (that curve only) it is refused', async () => {
    // jose 6 cannot sign with Ed448: node:crypto makes this one
    const { privateKey, publicKey } = generateKeyPairSync('ed448');
    const publicJwk = publicKey.export({ format: 'jwk' }) as JWK;
    const thumbprint = await calculateJwkThumbprint(publicJwk);
    const signed = (alg: string) => {
      const input = `${b64({ alg, typ: 'dpop+jwt', jwk: publicJwk })}.${b64(claims())}`;
      return `${input}.${sign(null, Buffer.from(input), privateKey).toString('base64url')}`;
    };
    expect(await refusal(verifier({ algorithms: ['EdDSA'] }).verify(request(signed('EdDSA')), TOKEN, thumbprint))).toBeUndefined();
    expect(await refusal(verifier({ algorithms: ['Ed25519'] }).verify(request(signed('Ed25519')), TOKEN, thumbprint))).toBe(
      "the proof's jwk is not a Ed25519 public key: it is a key of type ed448",
    );
  });

  it('when the alg is not an allowed one, the proof is refused, however good its signature', async () => {
    const rsa = await proofKey('RS256');
    expect(await refusal(verifier().verify(request(await proof(rsa)), TOKEN, rsa.thumbprint))).toBe('alg "RS256" is not one of ES256 Ed25519 EdDSA');
    const p384 = await proofKey('ES384');
    expect(await refusal(verifier({ algorithms: ['ES256'] }).verify(request(await proof(p384)), TOKEN, p384.thumbprint))).toBe('alg "ES384" is not one of ES256');
  });

  it("when the signature has another length than the alg's, it is refused before it is checked; a wrong one of the right length is refused", async () => {
    const key = await proofKey('ES256');
    const proofs = verifier({ algorithms: ['ES256'] });
    const good = await proof(key);
    const [header, payload, signature] = good.split('.') as [string, string, string];
    const bytes = Buffer.from(signature, 'base64url');
    const withSignature = (value: Buffer | string) => `${header}.${payload}.${typeof value === 'string' ? value : value.toString('base64url')}`;
    for (const [forged, reason] of [
      [withSignature(bytes.subarray(0, 63)), "the proof's signature is not 64 bytes long"],
      [withSignature(Buffer.concat([bytes, Buffer.of(0)])), "the proof's signature is not 64 bytes long"],
      // the same signature, DER-encoded (as node:crypto signs by default) rather than r ‖ s (RFC 7518 §3.4)
      [withSignature(sign('sha256', Buffer.from(`${header}.${payload}`), { key: await privateKeyObject(key), dsaEncoding: 'der' })), "the proof's signature is not 64 bytes long"],
      // 4n + 1 characters: no base64url encoding of anything
      [withSignature(`${signature}A`), "the proof's signature is not 64 bytes long"],
      [withSignature(Buffer.from(bytes).fill(1, 0, 1)), "the proof's signature is not valid"],
      [`${header}.${b64(claims())}.${signature}`, "the proof's signature is not valid"],
    ] as const) {
      expect(await refusal(proofs.verify(request(forged), TOKEN, key.thumbprint))).toBe(reason);
    }
    expect(await refusal(proofs.verify(request(good), TOKEN, key.thumbprint))).toBeUndefined();
  });

  it("when the jwk is not a key the alg takes (ES256 with a P-384 key, RS256 with a 1024-bit or a 16,384-bit key), it is refused whoever signed", async () => {
    const p256 = await proofKey('ES256');
    const p384 = await proofKey('ES384');
    expect(await refusal(verifier({ algorithms: ['ES256'] }).verify(request(await proof(p256, {}, { jwk: p384.publicJwk })), TOKEN, p384.thumbprint))).toBe(
      "the proof's jwk is not a ES256 public key: it is a key on secp384r1",
    );
    const ed = await proofKey('Ed25519');
    expect(await refusal(verifier({ algorithms: ['ES256'] }).verify(request(await proof(p256, {}, { jwk: ed.publicJwk })), TOKEN, ed.thumbprint))).toMatch(
      /^the proof's jwk is not a ES256 public key/u,
    );
    // jose signs with 2048 bits at least: the short key is only in the header, where it is refused before any signature is checked
    const rsa = await proofKey('RS256');
    const short = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' }) as JWK;
    expect(await refusal(verifier({ algorithms: ['RS256'] }).verify(request(await proof(rsa, {}, { jwk: short })), TOKEN, await calculateJwkThumbprint(short)))).toBe(
      "the proof's jwk is not a RS256 public key: its modulus has 1024 bits (at least 2048)",
    );
    // a public modulus need not be a product of primes to be imported: 16,384 bits, top bit set, odd
    const modulus = Buffer.alloc(2048, 0xa5);
    modulus[0] = 0xc5;
    const huge = { kty: 'RSA', n: modulus.toString('base64url'), e: 'AQAB' } as JWK;
    expect(await refusal(verifier({ algorithms: ['RS256'] }).verify(request(await proof(rsa, {}, { jwk: huge })), TOKEN, await calculateJwkThumbprint(huge)))).toBe(
      "the proof's jwk is not a RS256 public key: its modulus has 16384 bits (at most 8192)",
    );
    expect(await refusal(verifier({ algorithms: ['ES256'] }).verify(request(await proof(p256, {}, { jwk: { kty: 'EC', crv: 'P-256', x: 'AAAA', y: 'AAAA' } })), TOKEN, p256.thumbprint))).toMatch(
      /^the proof's jwk is not a ES256 public key: /u,
    );
  });

  it('when the jwk carries a private member (d, of an EC or RSA private key), it is refused', async () => {
    for (const alg of ['ES256', 'RS256']) {
      const key = await proofKey(alg);
      const privateJwk = await exportJWK(key.privateKey);
      expect(await refusal(verifier({ algorithms: [alg] }).verify(request(await proof(key, {}, { jwk: privateJwk })), TOKEN, key.thumbprint))).toMatch(
        /^the proof's jwk carries the private or symmetric member "d"$/u,
      );
    }
  });

  it('when the jwk says it is for other operations than verify (key_ops), it is refused, as WebCrypto refused it', async () => {
    const key = await proofKey('ES256');
    const proofs = verifier({ algorithms: ['ES256'] });
    for (const keyOps of [['sign'], ['verify', 'sign'], [], 'verify']) {
      expect(await refusal(proofs.verify(request(await proof(key, {}, { jwk: { ...key.publicJwk, key_ops: keyOps } })), TOKEN, key.thumbprint))).toMatch(/key_ops/u);
    }
    expect(await refusal(proofs.verify(request(await proof(key, {}, { jwk: { ...key.publicJwk, key_ops: ['verify'] } })), TOKEN, key.thumbprint))).toBeUndefined();
  });

  it('when the header has crit (an extension) or b64, the proof is refused: the guard understands no extension', async () => {
    const key = await proofKey('ES256');
    const proofs = verifier({ algorithms: ['ES256'] });
    const critical = await new SignJWT(claims())
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.publicJwk, crit: ['urn:example:ext'], 'urn:example:ext': 1 })
      .sign(key.privateKey, { crit: { 'urn:example:ext': true } });
    expect(await refusal(proofs.verify(request(critical), TOKEN, key.thumbprint))).toBe('the proof header has crit (no extension is understood)');
    expect(await refusal(proofs.verify(request(await proof(key, {}, { b64: true })), TOKEN, key.thumbprint))).toBe('the proof header has b64 (the payload must be base64url JSON)');
  });

  it('when the payload is not a JSON object (an array, null, a number, not JSON, not UTF-8), the proof is refused, its signature good', async () => {
    const key = await proofKey('ES256');
    const proofs = verifier({ algorithms: ['ES256'] });
    for (const [payload, reason] of [
      [JSON.stringify([claims()]), 'the proof payload is not a JSON object'],
      ['null', 'the proof payload is not a JSON object'],
      ['42', 'the proof payload is not a JSON object'],
      ['"htm"', 'the proof payload is not a JSON object'],
      ['{"htm":', 'the proof payload is not UTF-8 JSON'],
      [Buffer.concat([Buffer.from('{"htm":"'), Buffer.of(0xff), Buffer.from('"}')]), 'the proof payload is not UTF-8 JSON'],
    ] as const) {
      const signed = await new CompactSign(typeof payload === 'string' ? new TextEncoder().encode(payload) : payload)
        .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.publicJwk })
        .sign(key.privateKey);
      expect(await refusal(proofs.verify(request(signed), TOKEN, key.thumbprint))).toBe(reason);
    }
  });

  it('when the proof has exp, it must not be past (with the skew); when it has nbf, it must not be ahead (with the skew); both must be numbers', async () => {
    const key = await proofKey('ES256');
    const proofs = verifier({ algorithms: ['ES256'], clockSkewSeconds: 5 });
    const verdict = async (override: Record<string, unknown>) => refusal(proofs.verify(request(await proof(key, override)), TOKEN, key.thumbprint));
    expect(await verdict({ exp: NOW_SECONDS - 60 })).toBe('exp was 60 s ago (at most 5 s of skew)');
    expect(await verdict({ exp: NOW_SECONDS - 5 })).toBe('exp was 5 s ago (at most 5 s of skew)');
    expect(await verdict({ exp: NOW_SECONDS - 4 })).toBeUndefined();
    expect(await verdict({ exp: NOW_SECONDS + 60 })).toBeUndefined();
    expect(await verdict({ nbf: NOW_SECONDS + 60 })).toBe('nbf is 60 s in the future (at most 5 s)');
    expect(await verdict({ nbf: NOW_SECONDS + 5 })).toBeUndefined();
    expect(await verdict({ nbf: NOW_SECONDS - 60 })).toBeUndefined();
    expect(await verdict({ exp: String(NOW_SECONDS + 60) })).toBe('exp is not a number');
    expect(await verdict({ nbf: null })).toBe('nbf is not a number');
  });

  it('when htu is the request URL as the guard wrote it, or the same URL normalised, without its query and fragment, it passes; another URL, or no URL, is refused', async () => {
    const key = await proofKey('ES256');
    const proofs = verifier({ algorithms: ['ES256'] });
    const verdict = async (htu: string, url = URL_) => refusal(proofs.verify(request(await proof(key, { htu }), 'GET', url), TOKEN, key.thumbprint));
    for (const htu of [URL_, 'HTTPS://Orders.Example.COM:443/orders', 'https://orders.example.com/stock/../orders', `${URL_}?page=2`, `${URL_}#top`]) {
      expect(await verdict(htu)).toBeUndefined();
    }
    expect(await verdict(URL_, `${URL_}?page=2`)).toBeUndefined();
    expect(await verdict(`${URL_}?page=2`, `${URL_}?page=3`)).toBeUndefined();
    for (const htu of [`${URL_}/`, 'http://orders.example.com/orders', 'https://orders.example.com:8443/orders', '/orders', '']) {
      expect(await verdict(htu)).toMatch(/^htu .* is not the request URL/u);
    }
    // the same string, but not a URL: refused as before, whatever the request says it is
    expect(await verdict('orders.example.com/orders', 'orders.example.com/orders')).toMatch(/^htu .* is not the request URL/u);
  });

  it('keeps the claim checks: jti, htm, htu, ath, iat (window and type), the bound key and the nonce', async () => {
    const key = await proofKey('ES256');
    const other = await proofKey('ES256');
    const proofs = verifier({ algorithms: ['ES256'] });
    const verdict = async (override: Record<string, unknown>, signer = key) => refusal(proofs.verify(request(await proof(signer, override)), TOKEN, key.thumbprint));
    expect(await verdict({ jti: undefined })).toBe('the proof has no usable jti');
    expect(await verdict({ jti: 'x'.repeat(257) })).toBe('the proof has no usable jti');
    expect(await verdict({ htm: 'POST' })).toBe('htm "POST" is not the request method GET');
    expect(await verdict({ htu: 'https://orders.example.com/orders/admin' })).toMatch(/^htu "https:\/\/orders.example.com\/orders\/admin" is not the request URL/u);
    expect(await verdict({ htu: 'https://evil.example/orders' })).toMatch(/^htu .* is not the request URL/u);
    expect(await verdict({ htu: 42 })).toMatch(/^htu 42 is not the request URL/u);
    expect(await verdict({ ath: undefined })).toBe('ath is not the hash of the access token sent');
    expect(await verdict({ ath: createHash('sha256').update('another token').digest('base64url') })).toBe('ath is not the hash of the access token sent');
    expect(await verdict({ iat: NOW_SECONDS - 120 })).toBe('iat is 120 s old (at most 60 s)');
    expect(await verdict({ iat: NOW_SECONDS + 60 })).toBe('iat is 60 s in the future (at most 5 s)');
    expect(await verdict({ iat: String(NOW_SECONDS) })).toBe('the proof has no iat');
    expect(await verdict({}, other)).toBe("the proof is signed by another key than the token's cnf.jkt");
    expect(await verdict({ htu: `${URL_}?page=2#top` })).toBeUndefined();
    const strict = verifier({ algorithms: ['ES256'], nonces: true });
    await expect(strict.verify(request(await proof(key)), TOKEN, key.thumbprint)).rejects.toThrow(UseDpopNonce);
    expect(await refusal(strict.verify(request(await proof(key, { nonce: strict.nonces?.current() })), TOKEN, key.thumbprint))).toBeUndefined();
  });
});
