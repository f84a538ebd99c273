import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import { actorChain, MAX_ACTORS } from '../src/principal.js';
import { accessToken, AUDIENCE, guardedApp, ISSUER, JwksServer, signingKey, type SigningKey } from './support.js';

describe('guard: exchanged tokens carry their delegation chain (RFC 8693 §4.1, E4)', () => {
  const jwks = new JwksServer();
  let issuerKey: SigningKey;
  let app: Awaited<ReturnType<typeof guardedApp>>;

  const call = async (path: string, claims: Record<string, unknown>) =>
    fetch(`${app.url}${path}`, { headers: { authorization: `Bearer ${await accessToken(issuerKey, claims)}` } });

  beforeAll(async () => {
    issuerKey = await signingKey('issuer-key');
    jwks.keys = [issuerKey.publicJwk];
    await jwks.start();
    app = await guardedApp({ issuer: ISSUER, audience: AUDIENCE, jwksUri: jwks.url });
  });

  afterAll(async () => {
    await app?.close();
    await jwks.stop();
  });

  it('when a token was exchanged, the principal is the person, with the acting services in act, innermost the earliest', async () => {
    const act = { sub: 'reports-api', act: { sub: 'orders-api' } };
    const response = await call('/me', { sub: 'user-1', client_id: 'reports-api', act });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ kind: 'user', sub: 'user-1', clientId: 'reports-api', act });
  });

  it('when a token was not exchanged, the principal has no act', async () => {
    const body = (await (await call('/me', {})).json()) as Record<string, unknown>;
    expect(body['act']).toBeUndefined();
  });

  it('when an exchanged token is checked for scopes and roles, they are its own, as for any token', async () => {
    const act = { sub: 'orders-api' };
    expect((await call('/orders', { act, scope: 'orders:read' })).status).toBe(200);
    expect((await call('/orders', { act, scope: 'reports:read' })).status).toBe(403);
    expect((await call('/admin', { act, roles: ['ops'] })).status).toBe(200);
    expect((await call('/admin', { act, roles: [] })).status).toBe(403);
  });

  it('when act is malformed (not an object, no sub, a malformed nested act, or too deep), the token is refused: it could hide who acts', async () => {
    let deep: Record<string, unknown> = { sub: 'a' };
    for (let depth = 0; depth < MAX_ACTORS; depth += 1) deep = { sub: `a${depth}`, act: deep };
    for (const act of ['orders-api', null, [], {}, { sub: '' }, { sub: 7 }, { sub: 'orders-api', act: 'gateway' }, { sub: 'orders-api', act: {} }, deep]) {
      const response = await call('/me', { act });
      expect({ act, status: response.status }).toEqual({ act, status: 401 });
      expect(response.headers.get('www-authenticate')).toContain('error="invalid_token"');
    }
  });

  it('when a chain is read, actorChain keeps sub and act only', () => {
    expect(actorChain({ sub: 'b', client_id: 'b', act: { sub: 'a', iss: 'x' } })).toEqual({ sub: 'b', act: { sub: 'a' } });
    expect(actorChain({ sub: 'b', act: { sub: 'a' } }, 1)).toBeNull();
  });
});
