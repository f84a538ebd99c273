import { describe, expect, it } from '@jest/globals';

import { audienceScopes, grantedScope, withDelegatedScopes } from '../../src/oidc/scope-policy.js';

const ORDERS = 'http://localhost:4001';
const REPORTS = 'http://localhost:4002';
const INVENTORY = 'http://localhost:4003';

describe('audienceScopes (S6)', () => {
  const declared = new Map([
    [ORDERS, ['orders:read', 'orders:write']],
    [REPORTS, ['reports:read']],
  ]);
  const client = ['openid', 'profile', 'email', 'offline_access', 'orders:read', 'reports:read', 'stock:read'];

  it('when the audience declares its scopes, answers the client\'s scopes among them, never an OpenID scope', () => {
    expect(audienceScopes(client, ORDERS, declared)).toEqual(['orders:read']);
    expect(audienceScopes(client, REPORTS, declared)).toEqual(['reports:read']);
  });

  it('when the audience declares nothing, answers the client\'s scopes no other resource declares', () => {
    expect(audienceScopes(client, INVENTORY, declared)).toEqual(['stock:read']);
    expect(audienceScopes(client, INVENTORY, new Map())).toEqual(['orders:read', 'reports:read', 'stock:read']);
  });

  it('when the client has none of the audience\'s scopes, answers none', () => {
    expect(audienceScopes(['openid', 'reports:read'], ORDERS, declared)).toEqual([]);
  });
});

describe('grantedScope', () => {
  it('keeps what was asked for within the audience\'s scopes, in the order asked, once each', () => {
    expect(grantedScope(['orders:write', 'openid', 'reports:read', 'orders:read', 'orders:write'], 'orders:read orders:write')).toBe('orders:write orders:read');
    expect(grantedScope(['openid'], '')).toBe('');
  });
});

describe('withDelegatedScopes (RFC 8693 delegation, E2)', () => {
  const ADMIN = 'http://localhost:4000/admin';
  const declared = new Map([
    [ORDERS, ['orders:read']],
    [REPORTS, ['reports:read']],
    [INVENTORY, ['stock:read']],
    [ADMIN, ['sigil:admin']],
  ]);

  it('when a resource may exchange for another, it also declares that one\'s scopes, and transitively what that one passes on', () => {
    const widened = withDelegatedScopes(declared, new Map([[ORDERS, [REPORTS]], [REPORTS, [INVENTORY]]]));
    expect(widened.get(ORDERS)).toEqual(['orders:read', 'reports:read', 'stock:read']);
    expect(widened.get(REPORTS)).toEqual(['reports:read', 'stock:read']);
    expect(widened.get(INVENTORY)).toEqual(['stock:read']);
  });

  it('when exchanges go round in a cycle, each resource gets every scope of the cycle once', () => {
    const widened = withDelegatedScopes(declared, new Map([[ORDERS, [REPORTS]], [REPORTS, [ORDERS]]]));
    expect(widened.get(ORDERS)).toEqual(['orders:read', 'reports:read']);
    expect(widened.get(REPORTS)).toEqual(['reports:read', 'orders:read']);
  });

  it("when the target is one of the issuer's fixed audiences, nothing of it is passed on, and it passes nothing on", () => {
    const widened = withDelegatedScopes(declared, new Map([[ORDERS, [ADMIN]], [ADMIN, [REPORTS]]]), new Set([ADMIN]));
    expect(widened.get(ORDERS)).toEqual(['orders:read']);
    expect(widened.get(ADMIN)).toEqual(['sigil:admin']);
  });

  it('when a resource declares nothing, it stays undeclared (its tokens keep the rule of undeclared audiences)', () => {
    const widened = withDelegatedScopes(new Map([[REPORTS, ['reports:read']]]), new Map([[ORDERS, [REPORTS]]]));
    expect(widened.has(ORDERS)).toBe(false);
  });
});
