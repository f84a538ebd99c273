import { describe, expect, it } from '@jest/globals';
import { z } from 'zod';

import { ClientChangeError, clientUpdateSchema, mergeClientUpdate, type ClientSettings } from '../../src/domain/clients.js';
import { hashSecret } from '../../src/domain/secrets.js';
import { secretAccepted } from '../../src/oidc/client-authentication.js';

const ID = '0123456789abcdef0123456789abcdef';

const machine: ClientSettings = {
  name: 'billing',
  grants: ['client_credentials'],
  scopes: ['orders:read'],
  roles: ['ops'],
  redirectUris: [],
  postLogoutRedirectUris: [],
  resources: ['http://localhost:4001'],
  public: false,
  firstParty: false,
  accessTokenTtl: null,
  auth: null,
  jwks: null,
  jwksUri: null,
  requireDpop: false,
  mayExchangeFor: [],
};

/** The changes of an update as its schema makes them. */
function changes(input: Record<string, unknown>) {
  const { id: _id, ...parsed } = clientUpdateSchema.parse({ id: ID, ...input });
  return parsed;
}

describe('client update', () => {
  it('when a setting is given, only it changes; the others keep their stored values', () => {
    expect(mergeClientUpdate(machine, changes({ name: '  renamed ' }))).toEqual({ ...machine, name: 'renamed' });
    expect(mergeClientUpdate(machine, changes({ roles: [], accessTokenTtl: 300 }))).toEqual({ ...machine, roles: [], accessTokenTtl: 300 });
  });

  it('when accessTokenTtl is null, the client goes back to the issuer\'s ACCESS_TOKEN_TTL', () => {
    expect(mergeClientUpdate({ ...machine, accessTokenTtl: 300 }, changes({ accessTokenTtl: null })).accessTokenTtl).toBeNull();
  });

  it('when a list is given, it replaces the stored list, duplicates dropped', () => {
    expect(mergeClientUpdate(machine, changes({ scopes: ['a', 'b', 'a'] })).scopes).toEqual(['a', 'b']);
  });

  it('when the merged result breaks a rule between settings, the update is refused with create\'s message', () => {
    const refused = (input: Record<string, unknown>, stored: ClientSettings = machine) => () => mergeClientUpdate(stored, changes(input));
    expect(refused({ grants: ['authorization_code'] })).toThrow('the authorization_code grant needs at least one --redirect-uri');
    expect(refused({ redirectUris: ['https://app.example.com/cb'] })).toThrow('--redirect-uri is only meaningful with the authorization_code grant');
    expect(refused({ grants: ['refresh_token'] })).toThrow('the refresh_token grant needs the authorization_code or password grant');
    expect(refused({ grants: [] }, { ...machine, accessTokenTtl: 300 })).toThrow('--access-token-ttl is only meaningful for a client with a grant');
    expect(refused({ grants: ['authorization_code'] })).toThrow(z.ZodError);
  });

  it('when a change would turn a confidential client public or back, it is refused', () => {
    expect(() => mergeClientUpdate(machine, changes({ public: true }))).toThrow(ClientChangeError);
    const spa: ClientSettings = { ...machine, public: true, grants: ['authorization_code'], redirectUris: ['https://spa.example.com/cb'] };
    expect(() => mergeClientUpdate(spa, changes({ public: false }))).toThrow('a public client cannot be made confidential');
    expect(mergeClientUpdate(spa, changes({ public: true, name: 'spa' }))).toEqual({ ...spa, name: 'spa' });
  });

  it('when an update has a bad value, no setting at all, or an unknown field, its schema refuses it', () => {
    for (const input of [{ accessTokenTtl: 5 }, {}, { name: 'x', secret: 'y' }, { grants: ['implicit'] }, { redirectUris: ['http://evil.example.com/cb'] }]) {
      expect(clientUpdateSchema.safeParse({ id: ID, ...input }).success).toBe(false);
    }
    expect(clientUpdateSchema.safeParse({ id: 'not-an-id', name: 'x' }).success).toBe(false);
  });
});

describe('client secrets after a rotation', () => {
  const now = 1_800_000_000_000;
  const current = hashSecret('new-secret');
  const previous = { hash: hashSecret('old-secret'), expiresAt: now + 1000 };

  it('when the grace period runs, both the new and the replaced secret are accepted, nothing else', () => {
    expect(secretAccepted('new-secret', current, previous, now)).toBe(true);
    expect(secretAccepted('old-secret', current, previous, now)).toBe(true);
    expect(secretAccepted('other', current, previous, now)).toBe(false);
  });

  it('when the grace period is over, the replaced secret is refused and the new one still accepted', () => {
    expect(secretAccepted('old-secret', current, previous, now + 1000)).toBe(false);
    expect(secretAccepted('new-secret', current, previous, now + 1000)).toBe(true);
  });

  it('when there is no replaced secret or no current one, only a stored digest can match', () => {
    expect(secretAccepted('new-secret', current, undefined, now)).toBe(true);
    expect(secretAccepted('old-secret', current, undefined, now)).toBe(false);
    expect(secretAccepted('anything', undefined, undefined, now)).toBe(false);
  });
});
