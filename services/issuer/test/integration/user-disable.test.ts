import { beforeAll, describe, expect, it } from '@jest/globals';

import { PasswordHasher } from '../../src/domain/passwords.js';
import { createUser, setUserDisabled } from '../../src/domain/users.js';
import { backends } from '../support/backends.js';
import { issuerSuite } from '../support/issuer.js';
import { postForm, registerClient, type Credentials } from '../support/oauth.js';

const ORDERS = 'http://localhost:4001';
const PASSWORD = 'correct horse battery';

interface Tokens {
  access_token: string;
  refresh_token: string;
}

describe.each(backends)('disabling a user ($name)', (backend) => {
  const suite = issuerSuite(backend);
  let app: Credentials;
  let service: Credentials;

  beforeAll(async () => {
    const { clients, users } = suite.issuer.stores;
    app = await registerClient(clients, { name: 'disable-app', grants: ['password', 'refresh_token'], scopes: ['orders:read'], resources: [ORDERS] });
    service = await registerClient(clients, { name: 'disable-orders', grants: ['client_credentials'], scopes: [], resources: [ORDERS] });
    const hasher = new PasswordHasher({ memoryKib: 19_456, timeCost: 2, parallelism: 1 });
    await createUser(users, { username: 'dora', password: PASSWORD }, hasher);
    await createUser(users, { username: 'otto', password: PASSWORD }, hasher);
  });

  const signIn = async (username: string): Promise<Tokens> => {
    const response = await postForm(suite.issuer.url, { grant_type: 'password', username, password: PASSWORD }, app);
    expect(response.status).toBe(200);
    return (await response.json()) as Tokens;
  };
  const refresh = (tokens: Tokens) => postForm(suite.issuer.url, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token }, app);
  const introspect = async (token: string) => (await (await postForm(suite.issuer.url, { token }, service, { path: '/token/introspection' })).json()) as { active: boolean };

  it('when a user is disabled and enabled again, its refresh tokens never work again and its access tokens introspect inactive; other users keep theirs', async () => {
    const dora = await signIn('dora');
    const otto = await signIn('otto');
    expect(await introspect(dora.access_token)).toMatchObject({ active: true });

    await setUserDisabled(suite.issuer.stores.users, 'dora', true);
    await setUserDisabled(suite.issuer.stores.users, 'dora', false);

    const refused = await refresh(dora);
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: string }).error).toBe('invalid_grant');
    expect(await introspect(dora.access_token)).toEqual({ active: false });
    expect((await refresh(otto)).status).toBe(200);
    // enabled again: a new sign-in works
    expect((await refresh(await signIn('dora'))).status).toBe(200);
  });
});
