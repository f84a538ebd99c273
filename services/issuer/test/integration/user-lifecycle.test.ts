import { beforeAll, describe, expect, it } from '@jest/globals';

import { backends } from '../support/backends.js';
import { sigil, sigilJson } from '../support/cli.js';
import { issuerSuite, testEnv } from '../support/issuer.js';
import { postForm, registerClient, type Credentials } from '../support/oauth.js';

const ORDERS = 'http://localhost:4001';
const PASSWORD = 'correct horse battery';
const NEW_PASSWORD = 'staple orbit lantern';

interface Tokens {
  access_token: string;
  refresh_token: string;
}

describe.each(backends)('the lifecycle of a user through the CLI ($name)', (backend) => {
  const suite = issuerSuite(backend);
  const env = () => testEnv(suite.database);
  let app: Credentials;
  let service: Credentials;

  const createUser = async (username: string, password = PASSWORD) => {
    const created = await sigil(['users', 'create', '--username', username, '--password-stdin', '--role', 'reader', '--json'], env(), `${password}\n`);
    expect(created.code).toBe(0);
    return JSON.parse(created.stdout) as { id: string; username: string };
  };
  const passwordGrant = (username: string, password: string) => postForm(suite.issuer.url, { grant_type: 'password', username, password }, app);
  const signIn = async (username: string, password = PASSWORD): Promise<Tokens> => {
    const response = await passwordGrant(username, password);
    expect(response.status).toBe(200);
    return (await response.json()) as Tokens;
  };
  const refresh = (tokens: Tokens) => postForm(suite.issuer.url, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token }, app);
  const introspect = async (token: string) => (await (await postForm(suite.issuer.url, { token }, service, { path: '/token/introspection' })).json()) as { active: boolean };
  const refusal = async (response: Response) => ({ status: response.status, body: (await response.json()) as unknown });

  beforeAll(async () => {
    const { clients } = suite.issuer.stores;
    app = await registerClient(clients, { name: 'lifecycle-app', grants: ['password', 'refresh_token'], scopes: ['orders:read'], resources: [ORDERS] });
    service = await registerClient(clients, { name: 'lifecycle-orders', grants: ['client_credentials'], scopes: [], resources: [ORDERS] });
  });

  it('when a user is shown, prints its record (never a password or hash), found in any case', async () => {
    const user = await createUser('Una');
    const shown = await sigil(['users', 'show', 'una', '--json'], env());
    expect(shown.code).toBe(0);
    expect(JSON.parse(shown.stdout)).toEqual({ id: user.id, username: 'Una', email: null, roles: ['reader'], disabled: false, created_at: expect.any(String) });
    expect(shown.stdout).not.toContain('argon2');
    const human = await sigil(['users', 'show', 'UNA'], env());
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(user.id);
    expect(human.stdout).toMatch(/^roles +reader$/mu);
  });

  it('when a password is set, the old one is refused at /token and the new one accepted, and every grant from before is revoked', async () => {
    await createUser('pia');
    const before = await signIn('pia');
    expect(await introspect(before.access_token)).toMatchObject({ active: true });

    const set = await sigil(['users', 'set-password', 'pia', '--password-stdin', '--json'], env(), `${NEW_PASSWORD}\n`);
    expect(set.code).toBe(0);
    expect(JSON.parse(set.stdout)).toMatchObject({ username: 'pia', grants_revoked: true });
    expect(set.stdout).not.toContain(NEW_PASSWORD);

    const old = await refusal(await passwordGrant('pia', PASSWORD));
    expect(old).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    const refreshed = await refusal(await refresh(before));
    expect(refreshed).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    expect(await introspect(before.access_token)).toEqual({ active: false });
    const after = await signIn('pia', NEW_PASSWORD);
    expect((await refresh(after)).status).toBe(200);
  });

  it('when a user is deleted, its tokens are dead, its sign-in gets the answer an unknown user gets, and its username can be taken again', async () => {
    const user = await createUser('dex');
    const tokens = await signIn('dex');

    const deleted = await sigilJson(['users', 'delete', 'DEX'], env());
    expect(deleted).toEqual({ id: user.id, username: 'dex', deleted: true, grants_revoked: true });

    expect(await refusal(await refresh(tokens))).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    expect(await introspect(tokens.access_token)).toEqual({ active: false });
    const gone = await refusal(await passwordGrant('dex', PASSWORD));
    const unknown = await refusal(await passwordGrant('nobody-at-all', PASSWORD));
    expect(gone).toEqual(unknown);
    expect(gone.status).toBe(400);
    expect((await sigil(['users', 'show', 'dex'], env())).stderr).toBe('sigil: no user named dex\n');
    const { users } = await sigilJson<{ users: { username: string }[] }>(['users', 'list'], env());
    expect(users.map((listed) => listed.username)).not.toContain('dex');

    // a new user of the same name is someone else: none of the old grants come back
    const again = await createUser('dex');
    expect(again.id).not.toBe(user.id);
    const fresh = await signIn('dex');
    expect((await refresh(fresh)).status).toBe(200);
    expect(await introspect(tokens.access_token)).toEqual({ active: false });
  });

  it('when given bad arguments, exits 2 with one line on stderr and changes nothing', async () => {
    await createUser('kim');
    const listBefore = await sigilJson(['users', 'list'], env());
    const badArguments: [string[], string, string | ReturnType<typeof expect.stringMatching>][] = [
      [['users', 'show', 'nobody'], '', 'sigil: no user named nobody'],
      [['users', 'show', 'bad name'], '', expect.stringMatching(/^sigil: <username>: a username is/u)],
      [['users', 'show'], '', "sigil: missing required argument 'username'"],
      [['users', 'delete', 'nobody'], '', 'sigil: no user named nobody'],
      [['users', 'delete', 'kim', 'extra'], '', expect.stringMatching(/^sigil: too many arguments/u)],
      [['users', 'set-password', 'kim'], NEW_PASSWORD, 'sigil: the password is read from standard input: pass --password-stdin'],
      [['users', 'set-password', 'kim', '--password-stdin'], 'short', 'sigil: --password-stdin: a password must be at least 8 characters'],
      [['users', 'set-password', 'kim', '--password-stdin'], '', 'sigil: --password-stdin: a password must be at least 8 characters'],
      [['users', 'set-password', 'nobody', '--password-stdin'], NEW_PASSWORD, 'sigil: no user named nobody'],
      [['users', 'set-password', '--password-stdin'], NEW_PASSWORD, "sigil: missing required argument 'username'"],
    ];
    for (const [args, stdin, message] of badArguments) {
      const result = await sigil(args, env(), stdin);
      expect({ args, code: result.code, stdout: result.stdout, stderr: result.stderr.trimEnd().split('\n') }).toEqual({ args, code: 2, stdout: '', stderr: [message] });
    }
    expect(await sigilJson(['users', 'list'], env())).toEqual(listBefore);
    // the password is the one kim was created with
    await signIn('kim');
  });
});
