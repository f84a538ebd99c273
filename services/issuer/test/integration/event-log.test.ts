import { describe, expect, it } from '@jest/globals';

import { TOKEN_EXCHANGE } from '../../src/domain/clients.js';
import { THROTTLE_POLICY } from '../../src/domain/login-throttle.js';
import { backends } from '../support/backends.js';
import { sigil, sigilJson } from '../support/cli.js';
import { freePort, testEnv } from '../support/issuer.js';
import { claimsOf, postForm, type Credentials } from '../support/oauth.js';
import { spawnIssuer } from '../support/process.js';
import { signInWithoutBrowser } from '../support/sign-in.js';

const ORDERS = 'http://localhost:4001';
const REPORTS = 'http://localhost:4002';
const PASSWORD = 'a right and long password';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const CALLBACK = 'https://app.example.com/cb';

interface Created {
  client_id: string;
  client_secret: string;
}

type Line = Record<string, unknown> & { msg: string };

async function accessToken(response: Response): Promise<string> {
  expect(response.status).toBe(200);
  return ((await response.json()) as { access_token: string }).access_token;
}

describe.each(backends)('the event log lines of a full flow ($name)', (backend) => {
  it('writes one JSON line per token issued, sign-in outcome, lock and admin change, with their fields, and never a secret, password or token', async () => {
    const database = await backend.create();
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const env = testEnv(database);
    const issuer = spawnIssuer({ ...env, PORT: String(port), ISSUER: url, LOG_LEVEL: 'info' });
    const secrets: string[] = [PASSWORD];
    const tokens = { admin: '', machine: '', user: '', exchanged: '', web: '', code: '' };
    let webClient: string | undefined;
    try {
      await issuer.waitForOutput(/"msg":"sigil issuer listening"/u, 1, 90_000);
      // the operator's admin client and a user, from the CLI (through the issuer's admin socket on PGlite, straight to PostgreSQL otherwise)
      const provisioner = await sigilJson<Created>(['clients', 'create', '--name', 'provisioner', '--grant', 'client_credentials', '--scope', 'sigil:admin', '--resource', `${url}/admin`], env);
      const created = await sigil(['users', 'create', '--username', 'alice', '--password-stdin', '--json'], env, `${PASSWORD}\n`);
      expect(created.code).toBe(0);
      const exchanger = await sigilJson<Created>(['clients', 'create', '--name', 'orders-service', '--grant', TOKEN_EXCHANGE, '--resource', ORDERS, '--may-exchange-for', REPORTS], env);
      const web = await sigilJson<Created>(['clients', 'create', '--name', 'web', '--grant', 'authorization_code', '--redirect-uri', CALLBACK, '--resource', ORDERS], env);
      webClient = web.client_id;
      secrets.push(provisioner.client_secret, exchanger.client_secret, web.client_secret);

      // a sign-in on the login page, and its code redeemed
      const { callbackUrl, codeVerifier } = await signInWithoutBrowser(url, { clientId: web.client_id, redirectUri: CALLBACK, scope: 'openid', username: 'alice', password: PASSWORD });
      tokens.code = callbackUrl.searchParams.get('code') ?? '';
      tokens.web = await accessToken(await postForm(url, { grant_type: 'authorization_code', code: tokens.code, redirect_uri: CALLBACK, code_verifier: codeVerifier }, { id: web.client_id, secret: web.client_secret }));

      // an admin change through the HTTP admin API
      tokens.admin = await accessToken(await postForm(url, { grant_type: 'client_credentials', resource: `${url}/admin`, scope: 'sigil:admin' }, { id: provisioner.client_id, secret: provisioner.client_secret }));
      const answer = await fetch(`${url}/admin/v1/clients`, {
        method: 'POST',
        headers: { authorization: `Bearer ${tokens.admin}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'app', grants: ['password', 'client_credentials'], resources: [ORDERS] }),
      });
      expect(answer.status).toBe(201);
      const appCreated = (await answer.json()) as Created;
      const app: Credentials = { id: appCreated.client_id, secret: appCreated.client_secret };
      secrets.push(app.secret);

      tokens.machine = await accessToken(await postForm(url, { grant_type: 'client_credentials' }, app));
      tokens.user = await accessToken(await postForm(url, { grant_type: 'password', username: 'alice', password: PASSWORD }, app));
      const wrong = Array.from({ length: THROTTLE_POLICY.pair.threshold }, (_, i) => `wrong password number ${i}`);
      for (const password of wrong) expect((await postForm(url, { grant_type: 'password', username: 'alice', password }, app)).status).toBe(400);
      expect((await postForm(url, { grant_type: 'password', username: 'alice', password: 'once more while locked' }, app)).status).toBe(429);
      tokens.exchanged = await accessToken(
        await postForm(url, { grant_type: TOKEN_EXCHANGE, subject_token: tokens.user, subject_token_type: ACCESS_TOKEN_TYPE }, { id: exchanger.client_id, secret: exchanger.client_secret }),
      );
      secrets.push(...wrong, 'once more while locked');
    } finally {
      issuer.child.kill('SIGTERM');
    }
    const { stdout, stderr } = await issuer.exited;
    await database.drop();

    const lines = stdout
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as Line);
    const events = (name: string) => lines.filter((line) => line['event'] === name);

    // one line per access token, with its jti (the token's own), never the token
    const issued = events('token.issued');
    const tokenLine = (token: string) => {
      const { jti } = claimsOf(token);
      const matching = issued.filter((line) => line['jti'] === jti);
      expect(matching).toHaveLength(1);
      return matching[0];
    };
    expect(issued).toHaveLength(5);
    expect(tokenLine(tokens.admin)).toMatchObject({ level: 30, msg: 'token issued', grant_type: 'client_credentials', aud: `${url}/admin`, scope: 'sigil:admin', format: 'jwt' });
    const { machine: machineToken, user: userToken, exchanged } = tokens;
    expect(tokenLine(machineToken)).toMatchObject({ client_id: expect.any(String), grant_type: 'client_credentials', aud: ORDERS });
    expect(tokenLine(machineToken)).not.toHaveProperty('sub');
    const alice = claimsOf(userToken)['sub'];
    expect(tokenLine(userToken)).toMatchObject({ client_id: claimsOf(userToken)['client_id'], grant_type: 'password', sub: alice, aud: ORDERS });
    expect(tokenLine(exchanged)).toMatchObject({ grant_type: TOKEN_EXCHANGE, sub: alice, aud: REPORTS });
    // the web app asked for openid alone: an opaque token for userinfo, whose jti is the token itself: not logged
    expect(tokens.web.split('.')).toHaveLength(1);
    const webLines = issued.filter((line) => line['client_id'] === webClient);
    expect(webLines).toEqual([expect.objectContaining({ grant_type: 'authorization_code', sub: alice, scope: 'openid', format: 'opaque' })]);
    expect(webLines[0]).not.toHaveProperty('jti');

    // sign-ins: one success, one line per failure, the lock the last failure set, the refusal while locked
    // the login page's, then the password grant's
    const successes = events('login.success');
    expect(successes).toHaveLength(2);
    expect(successes[0]).toMatchObject({ msg: 'sign-in succeeded', sub: alice, username: 'alice', client_id: webClient, ip: expect.any(String) });
    expect(successes[1]).toMatchObject({ msg: 'sign-in succeeded', sub: alice, username: 'alice', client_id: claimsOf(userToken)['client_id'] });
    expect(events('login.failure')).toHaveLength(THROTTLE_POLICY.pair.threshold);
    expect(events('login.failure')[0]).toMatchObject({ sub: alice, client_id: claimsOf(userToken)['client_id'] });
    expect(events('login.locked')).toEqual([expect.objectContaining({ msg: 'sign-in locked', sub: alice, keys: ['pair'] })]);
    expect(events('login.throttled')).toEqual([expect.objectContaining({ reason: 'locked', retry_after: expect.any(Number) })]);

    // admin changes: the HTTP one names its actor; the CLI's are the issuer's to log only when they pass through its admin socket
    const changes = events('admin.change');
    expect(changes.filter((line) => line['actor'] !== 'cli')).toEqual([
      expect.objectContaining({ msg: 'admin change', type: 'admin.client.created', actor: claimsOf(tokens.admin)['client_id'], object: claimsOf(machineToken)['client_id'] }),
    ]);
    const viaSocket = changes.filter((line) => line['actor'] === 'cli').map((line) => line['type']);
    expect(viaSocket).toEqual(backend.name === 'pglite' ? ['admin.client.created', 'admin.user.created', 'admin.client.created', 'admin.client.created'] : []);

    // nothing secret anywhere in what the issuer wrote
    for (const secret of [...secrets, ...Object.values(tokens)]) {
      expect(secret).not.toBe('');
      expect(stdout).not.toContain(secret);
      expect(stderr).not.toContain(secret);
    }
    expect(stdout).not.toMatch(/eyJ[\w-]+\.eyJ/u);
  }, 180_000);
});
