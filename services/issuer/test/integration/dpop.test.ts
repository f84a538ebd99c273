import { beforeAll, describe, expect, it } from '@jest/globals';
import { exportJWK } from 'jose';
import * as oidc from 'openid-client';

import { PasswordHasher } from '../../src/domain/passwords.js';
import { createUser } from '../../src/domain/users.js';
import { AdminApi, adminToken, OpenApiContract } from '../support/admin-api.js';
import { backends } from '../support/backends.js';
import { dpopKey, dpopProof, type DpopKey } from '../support/dpop.js';
import { issuerSuite } from '../support/issuer.js';
import { claimsOf, postForm, registerClient, type Credentials } from '../support/oauth.js';
import { signInWithoutBrowser } from '../support/sign-in.js';

const ORDERS = 'http://localhost:4001';
const CALLBACK = 'http://127.0.0.1:8080/callback';
const PASSWORD = 'correct horse battery staple';

interface TokenAnswer {
  access_token?: string;
  token_type?: string;
  refresh_token?: string;
  error?: string;
  error_description?: string;
}

describe.each(backends)('DPoP at the issuer (RFC 9449, S18) ($name)', (backend) => {
  const suite = issuerSuite(backend);
  let machine: Credentials;
  let cliApp: Credentials;
  let spa: Credentials;
  let key: DpopKey;
  let otherKey: DpopKey;

  const tokenUrl = () => `${suite.issuer.issuer}/token`;
  /** A proof for the token endpoint by `signer` (default: the client's key). */
  const tokenProof = (signer: DpopKey = key, claims: Partial<Parameters<typeof dpopProof>[1]> = {}) => dpopProof(signer, { htm: 'POST', htu: tokenUrl(), ...claims });
  const tokenRequest = async (form: Record<string, string>, client: Credentials | undefined, proof?: string) => {
    const response = await postForm(suite.issuer.url, form, client, { headers: proof === undefined ? {} : { dpop: proof } });
    return { status: response.status, body: (await response.json()) as TokenAnswer };
  };
  const machineToken = (proof?: string) => tokenRequest({ grant_type: 'client_credentials' }, machine, proof);
  /** The openid-client configuration of a confidential client (discovery from ISSUER). */
  const relyingParty = (client: Credentials) =>
    oidc.discovery(new URL(suite.issuer.issuer), client.id, client.secret === '' ? undefined : client.secret, client.secret === '' ? oidc.None() : undefined, {
      execute: [oidc.allowInsecureRequests],
    });

  beforeAll(async () => {
    const { issuer } = suite;
    [key, otherKey] = await Promise.all([dpopKey('ES256'), dpopKey('ES256')]);
    await registerClient(issuer.stores.clients, { name: 'orders-api', resources: [ORDERS], scopes: ['orders:read', 'orders:write'] });
    machine = await registerClient(issuer.stores.clients, { name: 'machine', grants: ['client_credentials'], scopes: ['orders:read'], resources: [ORDERS] });
    cliApp = await registerClient(issuer.stores.clients, { name: 'cli-app', grants: ['password', 'refresh_token'], scopes: ['orders:read'], resources: [ORDERS] });
    spa = await registerClient(issuer.stores.clients, {
      name: 'spa',
      public: true,
      firstParty: true,
      grants: ['authorization_code', 'refresh_token'],
      scopes: ['openid', 'orders:read'],
      redirectUris: [CALLBACK],
      resources: [ORDERS],
    });
    await createUser(issuer.stores.users, { username: 'dora', password: PASSWORD, roles: ['ops'] }, new PasswordHasher());
  });

  it('when discovery is read, it lists the proof algorithms (dpop_signing_alg_values_supported)', async () => {
    const metadata = (await (await fetch(`${suite.issuer.url}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
    expect(metadata['dpop_signing_alg_values_supported']).toEqual(['ES256', 'Ed25519', 'EdDSA']);
  });

  it('when a client credentials request carries a proof (openid-client), the token is DPoP-bound: token_type DPoP, cnf.jkt the key thumbprint', async () => {
    const config = await relyingParty(machine);
    const keyPair = await oidc.randomDPoPKeyPair('ES256');
    const tokens = await oidc.clientCredentialsGrant(config, {}, { DPoP: oidc.getDPoPHandle(config, keyPair) });
    expect(tokens.token_type).toBe('dpop');
    const thumbprint = await oidc.getDPoPHandle(config, keyPair).calculateThumbprint();
    expect(claimsOf(tokens.access_token)).toMatchObject({ aud: ORDERS, client_id: machine.id, cnf: { jkt: thumbprint } });
  });

  it('when the same request carries no proof, the token is a plain bearer token (no cnf)', async () => {
    const { status, body } = await machineToken();
    expect(status).toBe(200);
    expect(body.token_type).toBe('Bearer');
    expect(claimsOf(body.access_token ?? '')).not.toHaveProperty('cnf');
  });

  it('when a proof is invalid (another htu, htm, a stale iat, a private key in its header), answers 400 invalid_dpop_proof', async () => {
    const privateJwk = await exportJWK(key.privateKey);
    const proofs = [
      await tokenProof(key, { htu: `${suite.issuer.issuer}/token/introspection` }),
      await tokenProof(key, { htm: 'GET' }),
      await tokenProof(key, { iat: Math.floor(Date.now() / 1000) - 3600 }),
      await dpopProof(key, { htm: 'POST', htu: tokenUrl() }, { jwk: privateJwk }),
      await dpopProof(key, { htm: 'POST', htu: tokenUrl() }, { typ: 'JWT' }),
    ];
    for (const proof of proofs) {
      const { status, body } = await machineToken(proof);
      expect({ status, error: body.error }).toEqual({ status: 400, error: 'invalid_dpop_proof' });
    }
  });

  it('when a proof is sent twice, the second request is refused as a replay (invalid_grant)', async () => {
    const proof = await tokenProof();
    expect((await machineToken(proof)).status).toBe(200);
    const replayed = await machineToken(proof);
    expect(replayed).toEqual({ status: 400, body: { error: 'invalid_grant', error_description: 'grant request is invalid' } });
  });

  it('when two requests race with one proof, exactly one gets a token (the jti is recorded atomically)', async () => {
    const proof = await tokenProof();
    const answers = await Promise.all(Array.from({ length: 6 }, () => machineToken(proof)));
    expect(answers.map((answer) => answer.status).sort()).toEqual([200, 400, 400, 400, 400, 400]);
    expect(answers.filter((answer) => answer.status === 400).every((answer) => answer.body.error === 'invalid_grant')).toBe(true);
  });

  it('when a --require-dpop client (created through the admin API as require_dpop) asks without a proof, it gets nothing; with one, a bound token', async () => {
    const adminClient = await registerClient(suite.issuer.stores.clients, { name: 'admin', grants: ['client_credentials'], scopes: ['sigil:admin'], resources: [`${suite.issuer.issuer}/admin`] });
    const admin = new AdminApi(suite.issuer.url, await OpenApiContract.load(`${suite.issuer.url}/admin/v1/openapi.json`), await adminToken(suite.issuer.url, adminClient, 'sigil:admin'));
    const created = await admin.call<{ client_id: string; client_secret: string; client: { require_dpop: boolean } }>('POST', '/clients', {
      body: { name: 'bound-only', grants: ['client_credentials'], scope: 'orders:read', resources: [ORDERS], require_dpop: true },
    });
    expect(created.status).toBe(201);
    expect(created.body.client.require_dpop).toBe(true);
    expect(admin.nonconforming).toEqual([]);
    const boundOnly = { id: created.body.client_id, secret: created.body.client_secret };

    const refused = await tokenRequest({ grant_type: 'client_credentials' }, boundOnly);
    expect(refused).toEqual({ status: 400, body: { error: 'invalid_grant', error_description: 'grant request is invalid' } });
    const bound = await tokenRequest({ grant_type: 'client_credentials' }, boundOnly, await tokenProof());
    expect(bound.status).toBe(200);
    expect(bound.body.token_type).toBe('DPoP');
    expect(claimsOf(bound.body.access_token ?? '')['cnf']).toEqual({ jkt: key.thumbprint });

    // switched off again: a bearer token without a proof
    expect((await admin.call('PATCH', `/clients/${boundOnly.id}`, { body: { require_dpop: false } })).body).toMatchObject({ require_dpop: false });
    expect((await tokenRequest({ grant_type: 'client_credentials' }, boundOnly)).body.token_type).toBe('Bearer');
  });

  it('when the password grant carries a proof, its access token is bound; a confidential client\'s refresh token is not (RFC 9449 §5)', async () => {
    const signIn = { grant_type: 'password', username: 'dora', password: PASSWORD };
    const { status, body } = await tokenRequest(signIn, cliApp, await tokenProof());
    expect(status).toBe(200);
    expect(body.token_type).toBe('DPoP');
    expect(claimsOf(body.access_token ?? '')['cnf']).toEqual({ jkt: key.thumbprint });
    // bound to the client's authentication instead: a refresh without a proof gets a bearer token
    const refreshed = await tokenRequest({ grant_type: 'refresh_token', refresh_token: body.refresh_token ?? '' }, cliApp);
    expect(refreshed.status).toBe(200);
    expect(refreshed.body.token_type).toBe('Bearer');
  });

  it('when the password grant replays a proof or a --require-dpop client sends none, it is refused before any sign-in is attempted', async () => {
    const strict = await registerClient(suite.issuer.stores.clients, { name: 'strict-cli', grants: ['password'], scopes: ['orders:read'], resources: [ORDERS], requireDpop: true });
    const proof = await tokenProof();
    expect((await tokenRequest({ grant_type: 'password', username: 'dora', password: PASSWORD }, cliApp, proof)).status).toBe(200);
    const before = await suite.issuer.db('auth_events').count<{ count: string }[]>({ count: '*' });
    for (const password of [PASSWORD, 'a wrong password']) {
      // the same answer for a right and a wrong password: the replay is found before the password is checked
      expect(await tokenRequest({ grant_type: 'password', username: 'dora', password }, cliApp, proof)).toEqual({
        status: 400,
        body: { error: 'invalid_grant', error_description: 'grant request is invalid' },
      });
      expect(await tokenRequest({ grant_type: 'password', username: 'dora', password }, strict)).toEqual({
        status: 400,
        body: { error: 'invalid_grant', error_description: 'grant request is invalid' },
      });
    }
    expect(await suite.issuer.db('auth_events').count<{ count: string }[]>({ count: '*' })).toEqual(before);
  });

  it('when a public client redeems its code with a proof, its refresh token is bound: refreshing without the proof or with another key is refused, with the key it works', async () => {
    const config = await relyingParty(spa);
    const keyPair = await oidc.randomDPoPKeyPair('ES256');
    const DPoP = oidc.getDPoPHandle(config, keyPair);
    const { callbackUrl, codeVerifier, state } = await signInWithoutBrowser(suite.issuer.issuer, {
      clientId: spa.id,
      redirectUri: CALLBACK,
      scope: 'openid orders:read',
      username: 'dora',
      password: PASSWORD,
      parameters: { resource: ORDERS },
    });
    const tokens = await oidc.authorizationCodeGrant(config, callbackUrl, { pkceCodeVerifier: codeVerifier, expectedState: state }, undefined, { DPoP });
    const thumbprint = await DPoP.calculateThumbprint();
    expect(tokens.token_type).toBe('dpop');
    expect(claimsOf(tokens.access_token)['cnf']).toEqual({ jkt: thumbprint });
    const refreshToken = tokens.refresh_token ?? '';

    const refresh = (proof?: string) => tokenRequest({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: spa.id }, undefined, proof);
    expect(await refresh()).toEqual({ status: 400, body: { error: 'invalid_grant', error_description: 'grant request is invalid' } });
    expect(await refresh(await tokenProof(otherKey))).toEqual({ status: 400, body: { error: 'invalid_grant', error_description: 'grant request is invalid' } });
    // the refused attempts spent nothing: the key holder refreshes, and the new tokens are bound to the same key
    const refreshed = await oidc.refreshTokenGrant(config, refreshToken, undefined, { DPoP });
    expect(refreshed.token_type).toBe('dpop');
    expect(claimsOf(refreshed.access_token)['cnf']).toEqual({ jkt: thumbprint });
  });

  it('when a DPoP-bound token is introspected by its client, the answer says token_type DPoP and carries cnf (RFC 9449 §6.2)', async () => {
    const { body } = await machineToken(await tokenProof());
    const response = await postForm(suite.issuer.url, { token: body.access_token ?? '' }, machine, { path: '/token/introspection' });
    expect(await response.json()).toMatchObject({ active: true, token_type: 'DPoP', cnf: { jkt: key.thumbprint }, client_id: machine.id });
  });

  it('when a DPoP-bound userinfo token is sent to /me as Bearer, it is refused (401); with the DPoP scheme and a proof, answered', async () => {
    const config = await relyingParty(spa);
    const keyPair = await oidc.randomDPoPKeyPair('ES256');
    const DPoP = oidc.getDPoPHandle(config, keyPair);
    const { callbackUrl, codeVerifier, state } = await signInWithoutBrowser(suite.issuer.issuer, {
      clientId: spa.id,
      redirectUri: CALLBACK,
      scope: 'openid',
      username: 'dora',
      password: PASSWORD,
    });
    const tokens = await oidc.authorizationCodeGrant(config, callbackUrl, { pkceCodeVerifier: codeVerifier, expectedState: state }, undefined, { DPoP });
    const asBearer = await fetch(`${suite.issuer.url}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(asBearer.status).toBe(401);
    expect(asBearer.headers.get('www-authenticate')).toMatch(/^DPoP .*error="invalid_token"/u);
    const claims = await oidc.fetchUserInfo(config, tokens.access_token, oidc.skipSubjectCheck, { DPoP });
    expect(claims.sub).toEqual(expect.any(String));
  });
});
