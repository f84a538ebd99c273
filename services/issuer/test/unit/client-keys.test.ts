import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { exportJWK, generateKeyPair, type JWK } from 'jose';

import { clientJwksSchema, clientJwksUri, usablePublicKeys } from '../../src/domain/client-keys.js';
import { mergeClientUpdate, newClientSchema, clientUpdateSchema, type ClientSettings } from '../../src/domain/clients.js';
import { lifetimeProblem } from '../../src/oidc/client-assertions.js';
import { ClientJwksError, ClientJwksFetcher } from '../../src/oidc/client-jwks.js';

const ORDERS = 'http://localhost:4001';
const ID = '0123456789abcdef0123456789abcdef';

async function publicJwk(alg: 'ES256' | 'RS256' | 'Ed25519' | 'ES384', kid: string): Promise<JWK> {
  const { publicKey } = await generateKeyPair(alg, { extractable: true });
  return { ...(await exportJWK(publicKey)), kid };
}

/** An RSA key shorter than jose will make. */
function shortRsaJwk(kid: string): JWK {
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
  return { ...(publicKey.export({ format: 'jwk' }) as JWK), kid };
}

async function privateJwk(alg: 'ES256' | 'RS256', kid: string): Promise<JWK> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  return { ...(await exportJWK(privateKey)), kid };
}

/** The messages of a refused key set, each with the path it was found at. */
function refusals(input: unknown): string[] {
  const result = clientJwksSchema.safeParse(input);
  return result.success ? [] : result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
}

describe('a private_key_jwt client\'s key set (--jwks-file)', () => {
  it('when the keys are public RSA, EC P-256 and Ed25519 keys with kids, keeps only their public members', async () => {
    const ec = await publicJwk('ES256', 'ec');
    const rsa = await publicJwk('RS256', 'rsa');
    const ed = await publicJwk('Ed25519', 'ed');
    const parsed = clientJwksSchema.parse({ keys: [{ ...ec, use: 'sig', alg: 'ES256', x5c: ['AAAA'], ext: true }, { ...rsa, key_ops: ['verify'] }, ed], other: 'dropped' });
    expect(parsed).toEqual({
      keys: [
        { kty: 'EC', kid: 'ec', crv: 'P-256', x: ec.x, y: ec.y, use: 'sig', alg: 'ES256' },
        { kty: 'RSA', kid: 'rsa', n: rsa.n, e: rsa.e, key_ops: ['verify'] },
        { kty: 'OKP', kid: 'ed', crv: 'Ed25519', x: ed.x },
      ],
    });
    // what the CLI checked and the admin socket checks again is the same set
    expect(clientJwksSchema.parse(parsed)).toEqual(parsed);
  });

  it('refuses private and symmetric keys, keys without a kid or with one used twice, other curves, short RSA keys, foreign algorithms and uses, and more than 5 keys', async () => {
    const ec = await publicJwk('ES256', 'ec');
    expect(refusals({ keys: [await privateJwk('ES256', 'leak')] })).toEqual(['keys.0: this key holds private key members (d): give the public keys only, never the private ones']);
    expect(refusals({ keys: [ec, await privateJwk('RS256', 'leak')] })[0]).toMatch(/^keys\.1: this key holds private key members \(d, p, q, dp, dq, qi\)/u);
    expect(refusals({ keys: [{ kty: 'oct', k: 'c2VjcmV0', kid: 'hmac' }] })).toEqual(['keys.0: this key is a symmetric key (kty oct): private_key_jwt needs public asymmetric keys']);
    expect(refusals({ keys: [{ ...ec, kid: undefined }] })).toEqual(['keys.0: this key needs a kid (1 to 200 printable ASCII characters)']);
    expect(refusals({ keys: [{ ...ec, kid: 'a b' }] })).toHaveLength(1);
    expect(refusals({ keys: [ec, { ...(await publicJwk('ES256', 'other')), kid: 'ec' }] })).toEqual(['keys.1: kid ec is used twice: each key needs its own']);
    expect(refusals({ keys: [await publicJwk('ES384', 'p384')] })).toEqual(['keys.0: this key is EC P-384: a key is RSA, EC P-256 or OKP Ed25519']);
    expect(refusals({ keys: [shortRsaJwk('short')] })).toEqual(['keys.0: this key is an RSA key of 1024 bits: at least 2048']);
    expect(refusals({ keys: [{ ...ec, alg: 'RS256' }] })[0]).toContain('has alg RS256: EC P-256 keys sign with ES256');
    expect(refusals({ keys: [{ ...ec, alg: 'HS256' }] })).toHaveLength(1);
    expect(refusals({ keys: [{ ...ec, use: 'enc' }] })[0]).toContain('has use enc');
    expect(refusals({ keys: [{ ...ec, key_ops: ['sign'] }] })[0]).toContain('key_ops without verify');
    expect(refusals({ keys: [{ ...ec, x: 'AAAA' }] })).toEqual(['keys.0: this key is not a valid EC P-256 public key']);
    const six = await Promise.all(Array.from({ length: 6 }, (_, index) => publicJwk('ES256', `k${index}`)));
    expect(refusals({ keys: six })).toEqual(['keys: at most 5 keys (the one in use and the next ones)']);
    expect(refusals({ keys: [] })).toHaveLength(1);
    expect(refusals([ec])).toHaveLength(1);
  });

  it('of a fetched key set, uses the keys that pass those rules and leaves the others out', async () => {
    const ec = await publicJwk('ES256', 'ec');
    expect(usablePublicKeys([ec, await privateJwk('ES256', 'leak'), { kty: 'oct', k: 'AA', kid: 'h' }, 'junk', null]).map((key) => key.kid)).toEqual(['ec']);
  });
});

describe('a private_key_jwt client\'s jwks_uri (--jwks-uri)', () => {
  it('is https, or http on a loopback host, without credentials or a fragment', () => {
    for (const uri of ['https://keys.example.com/jwks.json', 'http://127.0.0.1:9000/jwks', 'http://localhost/jwks', 'http://[::1]:8080/jwks']) {
      expect([uri, clientJwksUri.safeParse(uri).success]).toEqual([uri, true]);
    }
    for (const uri of ['http://keys.example.com/jwks.json', 'https://user:pass@keys.example.com/jwks', 'https://keys.example.com/jwks#x', 'ftp://keys.example.com/jwks', 'not a url', 'http://127.0.0.1.example.com/jwks']) {
      expect([uri, clientJwksUri.safeParse(uri).success]).toEqual([uri, false]);
    }
  });
});

describe('a client\'s way of authenticating', () => {
  const machine: ClientSettings = {
    name: 'billing',
    grants: ['client_credentials'],
    scopes: ['orders:read'],
    roles: [],
    redirectUris: [],
    postLogoutRedirectUris: [],
    resources: [ORDERS],
    public: false,
    firstParty: false,
    accessTokenTtl: null,
    auth: null,
    jwks: null,
    jwksUri: null,
    requireDpop: false,
    mayExchangeFor: [],
  };
  const changes = (input: Record<string, unknown>) => {
    const { id: _id, disabled: _disabled, ...parsed } = clientUpdateSchema.parse({ id: ID, ...input });
    return parsed;
  };
  const problems = (input: Record<string, unknown>) => {
    const result = newClientSchema.safeParse({ name: 'x', grants: ['client_credentials'], resources: [ORDERS], ...input });
    return result.success ? [] : result.error.issues.map((issue) => issue.message);
  };

  it('needs exactly one source of keys for private_key_jwt, and keys only with it; a public client takes no --auth', () => {
    expect(problems({ auth: 'private_key_jwt' })).toEqual(["--auth private_key_jwt needs the client's public keys: --jwks-file or --jwks-uri"]);
    expect(problems({ auth: 'private_key_jwt', jwksUri: 'https://k.example.com/j', jwks: null })).toEqual([]);
    expect(problems({ jwksUri: 'https://k.example.com/j' })).toEqual(['--jwks-file and --jwks-uri are only meaningful with --auth private_key_jwt']);
    expect(problems({ auth: 'client_secret_post', jwksUri: 'https://k.example.com/j' })).toEqual(['--jwks-file and --jwks-uri are only meaningful with --auth private_key_jwt']);
    expect(problems({ public: true, grants: ['authorization_code'], redirectUris: ['https://a.example.com/cb'], auth: 'client_secret_basic' })).toEqual([
      'a public client does not authenticate: --auth is for confidential clients',
    ]);
    expect(problems({ auth: 'client_secret_jwt' })).toEqual(['--auth is one of client_secret_basic, client_secret_post, private_key_jwt']);
  });

  it('when an update takes up private_key_jwt, it needs keys; one key source replaces the other; leaving it drops the keys', async () => {
    const jwks = { keys: [await publicJwk('ES256', 'k1')] };
    expect(() => mergeClientUpdate(machine, changes({ auth: 'private_key_jwt' }))).toThrow('needs the client\'s public keys');
    const keyed = mergeClientUpdate(machine, changes({ auth: 'private_key_jwt', jwks }));
    expect(keyed).toMatchObject({ auth: 'private_key_jwt', jwksUri: null, jwks: { keys: [{ kid: 'k1' }] } });
    expect(mergeClientUpdate(keyed, changes({ jwksUri: 'https://k.example.com/j' }))).toMatchObject({ auth: 'private_key_jwt', jwks: null, jwksUri: 'https://k.example.com/j' });
    expect(mergeClientUpdate(keyed, changes({ name: 'renamed' }))).toEqual({ ...keyed, name: 'renamed' });
    expect(mergeClientUpdate(keyed, changes({ auth: 'client_secret_basic' }))).toEqual({ ...machine, auth: 'client_secret_basic' });
    expect(mergeClientUpdate(keyed, changes({ auth: null }))).toEqual(machine);
    expect(() => mergeClientUpdate(keyed, changes({ jwks, jwksUri: 'https://k.example.com/j' }))).toThrow('exclude each other');
    expect(() => mergeClientUpdate(machine, changes({ jwksUri: 'https://k.example.com/j' }))).toThrow('only meaningful with --auth private_key_jwt');
  });
});

describe('a client assertion\'s lifetime', () => {
  it('is at most 300 s from now (plus the 15 s clock tolerance), and exp is a number', () => {
    const now = 1_800_000_000;
    expect(lifetimeProblem(now + 60, now)).toBeUndefined();
    expect(lifetimeProblem(now + 315, now)).toBeUndefined();
    expect(lifetimeProblem(now + 316, now)).toBe('the client assertion expires in 316 s: at most 300 s from now');
    expect(lifetimeProblem(undefined, now)).toBe('the client assertion needs a numeric exp');
    expect(lifetimeProblem('1800000060', now)).toBe('the client assertion needs a numeric exp');
  });
});

describe('the fetcher of clients\' jwks_uri', () => {
  let requests = 0;
  let answer: (res: http.ServerResponse) => void = (res) => res.end('{"keys":[]}');
  const server = http.createServer((_req, res) => {
    requests += 1;
    answer(res);
  });
  let base = '';

  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('answers from its last request within the floor, whatever the outcome, and asks again after it', async () => {
    const jwks = new ClientJwksFetcher({ refetchFloorMs: 300 });
    const ec = await publicJwk('ES256', 'ec');
    answer = (res) => res.end(JSON.stringify({ keys: [ec] }));
    requests = 0;
    expect((await jwks.keySet(`${base}/a`)).keys).toEqual([ec]);
    expect((await jwks.keySet(`${base}/a`, { refetch: true })).keys).toEqual([ec]);
    expect(requests).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 350));
    answer = (res) => res.writeHead(500).end();
    await expect(jwks.keySet(`${base}/a`, { refetch: true })).rejects.toThrow('the jwks_uri answered 500');
    await expect(jwks.keySet(`${base}/a`, { refetch: true })).rejects.toThrow(ClientJwksError);
    expect(requests).toBe(2);
    // concurrent asks for one URL share one request
    const concurrent = await Promise.allSettled(Array.from({ length: 5 }, () => jwks.engineFetch(`${base}/b`)));
    expect(concurrent.every((result) => result.status === 'fulfilled')).toBe(true);
    expect(requests).toBe(3);
  });

  it('gives up after its timeout, refuses a body over its limit, follows no redirect and fetches nothing from a URL a client may not register', async () => {
    const jwks = new ClientJwksFetcher({ refetchFloorMs: 0, timeoutMs: 200, maxBytes: 100 });
    answer = () => undefined;
    const started = Date.now();
    await expect(jwks.keySet(`${base}/slow`)).rejects.toThrow('could not be fetched');
    expect(Date.now() - started).toBeLessThan(2000);
    answer = (res) => res.end(JSON.stringify({ keys: [], padding: 'x'.repeat(200) }));
    await expect(jwks.keySet(`${base}/large`)).rejects.toThrow('larger than 100 bytes');
    answer = (res) => res.writeHead(302, { location: `${base}/elsewhere` }).end();
    await expect(jwks.keySet(`${base}/moved`)).rejects.toThrow('could not be fetched');
    requests = 0;
    await expect(jwks.keySet('http://keys.example.com/jwks.json')).rejects.toThrow('must be https, or http on a loopback host');
    expect(requests).toBe(0);
  });
});
