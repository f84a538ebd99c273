import { describe, expect, it } from '@jest/globals';

import { audienceScopes, grantedScope } from '../../src/oidc/scope-policy.js';

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
