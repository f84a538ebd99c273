import { describe, expect, it } from '@jest/globals';

import { newClientSchema, type NewClient } from '../../src/domain/clients.js';
import { isLoopbackHost, redirectUri, resourceUri, roleList, scopeList, splitScope } from '../../src/domain/validation.js';

const ORDERS = 'http://localhost:4001';
const REDIRECT_MESSAGE =
  'a redirect URI must be https, http on localhost/127.0.0.1/[::1], or a private-use scheme such as com.example.app:/cb, without a fragment';
const SCOPE_MESSAGE = 'a scope is one or more printable ASCII characters without spaces, " or \\';
const ROLE_MESSAGE = 'a role is 1–64 letters, digits, ":", ".", "_" or "-", starting with a letter or digit';

/** The messages of every issue, or [] when the input is accepted. */
function problems(result: { success: boolean; error?: { issues: { message: string }[] } }): string[] {
  return result.success ? [] : (result.error?.issues.map((issue) => issue.message) ?? []);
}

describe('redirect URIs (S1, S14)', () => {
  it.each([
    'https://app.example.com/callback',
    'https://app.example.com:8443/cb?tenant=a',
    'http://127.0.0.1:8080/cb',
    'http://localhost:3000/cb',
    'http://[::1]:9000/cb',
    'com.example.app:/cb',
  ])('when the redirect URI is %s, it is accepted', (uri) => {
    expect(redirectUri.safeParse(uri)).toEqual({ success: true, data: uri });
  });

  it.each([
    ['http on a public host (S14)', 'http://app.example.com/cb'],
    ['http on a host that only starts like localhost', 'http://localhost.evil.example/cb'],
    ['a fragment', 'https://app.example.com/cb#section'],
    ['an empty fragment', 'https://app.example.com/cb#'],
    ['a private-use scheme that is not reverse-DNS', 'myapp:/cb'],
    ['a javascript: URI', 'javascript:alert(1)'],
    ['a relative reference', '/callback'],
    ['an empty string', ''],
  ])('when the redirect URI has %s, it is refused', (_case, uri) => {
    expect(problems(redirectUri.safeParse(uri))).toEqual([REDIRECT_MESSAGE]);
  });

  it('when a host is checked for loopback, only localhost, 127.0.0.1 and [::1] count', () => {
    expect(['localhost', '127.0.0.1', '[::1]'].map(isLoopbackHost)).toEqual([true, true, true]);
    expect(['example.com', '10.0.0.1', 'localhost.example.com', '::1'].map(isLoopbackHost)).toEqual([false, false, false, false]);
  });
});

describe('resource indicators (RFC 8707)', () => {
  it('when the resource is an absolute URI without a fragment, it is accepted', () => {
    expect(resourceUri.safeParse(ORDERS)).toEqual({ success: true, data: ORDERS });
    expect(resourceUri.safeParse('urn:example:orders')).toEqual({ success: true, data: 'urn:example:orders' });
  });

  it.each(['orders', 'https://api.example.com/#x', 'https://api.example.com/#'])('when the resource is %s, it is refused', (uri) => {
    expect(problems(resourceUri.safeParse(uri))).toEqual(['a resource must be an absolute URI without a fragment']);
  });
});

describe('scopes and roles', () => {
  it('when scopes are valid scope-tokens (RFC 6749 §3.3), they are accepted and deduplicated', () => {
    expect(scopeList.parse(['orders:read', 'orders:write', 'orders:read', 'a!#[]~'])).toEqual(['orders:read', 'orders:write', 'a!#[]~']);
  });

  it.each([
    ['a space', 'orders read'],
    ['a double quote', 'orders"read'],
    ['a backslash', 'orders\\read'],
    ['nothing', ''],
    ['a non-ASCII character', 'commandes:lïre'],
    ['a control character', 'orders\tread'],
  ])('when a scope contains %s, it is refused', (_case, scope) => {
    expect(problems(scopeList.safeParse([scope]))).toEqual([SCOPE_MESSAGE]);
  });

  it('when a scope string is split, empty tokens from repeated spaces are dropped', () => {
    expect(splitScope('  orders:read   orders:write ')).toEqual(['orders:read', 'orders:write']);
    expect(splitScope(undefined)).toEqual([]);
    expect(splitScope('')).toEqual([]);
  });

  it('when roles match the pattern, they are accepted and deduplicated', () => {
    expect(roleList.parse(['admin', 'orders:admin', 'team.lead_1-x', 'admin', `a${'b'.repeat(63)}`])).toEqual([
      'admin',
      'orders:admin',
      'team.lead_1-x',
      `a${'b'.repeat(63)}`,
    ]);
  });

  it.each([
    ['starts with a hyphen', '-admin'],
    ['starts with a colon', ':admin'],
    ['contains a space', 'org admin'],
    ['is 65 characters long', `a${'b'.repeat(64)}`],
    ['is empty', ''],
    ['is not ASCII', 'ädmin'],
    ['contains a slash', 'orders/admin'],
  ])('when a role %s, it is refused', (_case, role) => {
    expect(problems(roleList.safeParse([role]))).toEqual([ROLE_MESSAGE]);
  });
});

describe('newClientSchema', () => {
  it('when a machine client is valid, applies the documented defaults and drops repeated grants', () => {
    expect(
      newClientSchema.parse({
        name: '  billing  ',
        grants: ['client_credentials', 'client_credentials'],
        scopes: ['orders:read'],
        resources: [ORDERS],
      }),
    ).toEqual({
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
    });
  });

  it('when no grant is given, the client is a resource service\'s own client, valid with or without resources', () => {
    expect(newClientSchema.parse({ name: 'orders-api', resources: [ORDERS], scopes: ['orders:read'] })).toMatchObject({ grants: [], resources: [ORDERS] });
    expect(problems(newClientSchema.safeParse({ name: 'nothing', grants: [] }))).toEqual([]);
  });

  it('when a machine client has no --resource, it is valid (its token requests answer invalid_target)', () => {
    expect(problems(newClientSchema.safeParse({ name: 'machine', grants: ['client_credentials'] }))).toEqual([]);
  });

  it.each([60, 900, 86_400])('when --access-token-ttl is %i, it is accepted', (ttl) => {
    expect(newClientSchema.parse({ name: 'm', grants: ['client_credentials'], accessTokenTtl: ttl }).accessTokenTtl).toBe(ttl);
  });

  it('when a public native client uses the authorization code grant with loopback and private-use redirects, it is accepted', () => {
    const input: NewClient = {
      name: 'cli',
      grants: ['authorization_code', 'refresh_token'],
      redirectUris: ['http://127.0.0.1:8080/cb', 'com.example.app:/cb'],
      public: true,
    };
    expect(problems(newClientSchema.safeParse(input))).toEqual([]);
  });

  it.each<[string, NewClient, string[]]>([
    [
      'a public client asks for client_credentials (S7)',
      { name: 'spa', grants: ['client_credentials'], resources: [ORDERS], public: true },
      ['a public client cannot use the client_credentials or password grant (it cannot authenticate)'],
    ],
    [
      'a public client asks for the password grant (S4)',
      { name: 'spa', grants: ['password'], resources: [ORDERS], public: true },
      ['a public client cannot use the client_credentials or password grant (it cannot authenticate)'],
    ],
    [
      'authorization_code has no redirect URI',
      { name: 'web', grants: ['authorization_code'] },
      ['the authorization_code grant needs at least one --redirect-uri'],
    ],
    [
      'a redirect URI is given without authorization_code',
      { name: 'machine', grants: ['client_credentials'], resources: [ORDERS], redirectUris: ['https://app.example.com/cb'] },
      ['--redirect-uri is only meaningful with the authorization_code grant'],
    ],
    [
      'refresh_token comes without a grant that issues refresh tokens',
      { name: 'machine', grants: ['client_credentials', 'refresh_token'], resources: [ORDERS] },
      ['the refresh_token grant needs the authorization_code or password grant'],
    ],
    ['--access-token-ttl is 59', { name: 'm', grants: ['client_credentials'], accessTokenTtl: 59 }, ['--access-token-ttl is at least 60 seconds']],
    ['--access-token-ttl is 86401', { name: 'm', grants: ['client_credentials'], accessTokenTtl: 86_401 }, ['--access-token-ttl is at most 86400 seconds (one day)']],
    ['--access-token-ttl is not whole', { name: 'm', grants: ['client_credentials'], accessTokenTtl: 90.5 }, ['--access-token-ttl is a whole number of seconds from 60 to 86400']],
    [
      'a grant-less client is public',
      { name: 'svc', resources: [ORDERS], public: true },
      ["a client with no --grant (a resource service's own client) must be confidential: it authenticates with its secret"],
    ],
    ['a grant-less client has an access-token lifetime', { name: 'svc', resources: [ORDERS], accessTokenTtl: 120 }, ['--access-token-ttl is only meaningful for a client with a grant']],
    [
      'a redirect URI is http on a public host (S14)',
      { name: 'web', grants: ['authorization_code'], redirectUris: ['http://app.example.com/cb'] },
      [REDIRECT_MESSAGE],
    ],
    [
      'a redirect URI has a fragment',
      { name: 'web', grants: ['authorization_code'], redirectUris: ['https://app.example.com/cb#x'] },
      [REDIRECT_MESSAGE],
    ],
    [
      'a scope contains a space',
      { name: 'machine', grants: ['client_credentials'], resources: [ORDERS], scopes: ['orders:read orders:write'] },
      [SCOPE_MESSAGE],
    ],
    [
      'a scope contains a quote',
      { name: 'machine', grants: ['client_credentials'], resources: [ORDERS], scopes: ['orders"read'] },
      [SCOPE_MESSAGE],
    ],
    [
      'a role does not match the pattern',
      { name: 'machine', grants: ['client_credentials'], resources: [ORDERS], roles: ['-admin'] },
      [ROLE_MESSAGE],
    ],
    ['the name is blank', { name: '   ', grants: ['client_credentials'], resources: [ORDERS] }, ['a name is required']],
  ])('when %s, the client is refused with that reason', (_case, input, expected) => {
    expect(problems(newClientSchema.safeParse(input))).toEqual(expected);
  });

  it('when the grant is not one of the five, the client is refused', () => {
    expect(problems(newClientSchema.safeParse({ name: 'magic', grants: ['implicit'], resources: [ORDERS] }))).toEqual([
      'a grant is one of client_credentials, password, authorization_code, refresh_token, urn:ietf:params:oauth:grant-type:token-exchange',
    ]);
  });

  it('when the input carries an unknown member (such as a chosen secret), the client is refused', () => {
    const result = newClientSchema.safeParse({ name: 'm', grants: ['client_credentials'], resources: [ORDERS], clientSecret: 'mine' });
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((issue) => issue.code)).toEqual(['unrecognized_keys']);
  });
});

describe('newClientSchema: token exchange (RFC 8693)', () => {
  const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
  const REPORTS = 'http://localhost:4002';

  it("when a service's own client has the token exchange grant and targets, it is valid, repeated targets dropped", () => {
    expect(newClientSchema.parse({ name: 'orders-api', grants: [EXCHANGE], resources: [ORDERS], mayExchangeFor: [REPORTS, REPORTS] })).toMatchObject({
      grants: [EXCHANGE],
      mayExchangeFor: [REPORTS],
    });
    // with the grant and no target it may exchange for nothing, and is still valid
    expect(problems(newClientSchema.safeParse({ name: 'idle', grants: [EXCHANGE], resources: [ORDERS] }))).toEqual([]);
  });

  it('when --may-exchange-for is given without the grant, or the client is public, or a target is no URI, the client is refused', () => {
    expect(problems(newClientSchema.safeParse({ name: 'x', resources: [ORDERS], mayExchangeFor: [REPORTS] }))).toEqual([
      `--may-exchange-for is only meaningful with the ${EXCHANGE} grant`,
    ]);
    expect(problems(newClientSchema.safeParse({ name: 'x', grants: [EXCHANGE], public: true, mayExchangeFor: [REPORTS] }))).toEqual([
      'a public client cannot use the token exchange grant (it cannot authenticate)',
    ]);
    expect(problems(newClientSchema.safeParse({ name: 'x', grants: [EXCHANGE], mayExchangeFor: ['not a uri'] }))).toEqual([
      'a resource must be an absolute URI without a fragment',
    ]);
  });
});
