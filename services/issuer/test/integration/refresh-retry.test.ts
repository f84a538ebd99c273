import { beforeAll, describe, expect, it } from '@jest/globals';

import { PasswordHasher } from '../../src/domain/passwords.js';
import { createUser } from '../../src/domain/users.js';
import { backends } from '../support/backends.js';
import { issuerSuite } from '../support/issuer.js';
import { claimsOf, postForm, registerClient, type Credentials } from '../support/oauth.js';

const ORDERS = 'http://localhost:4001';
const PASSWORD = 'correct horse battery staple';

interface TokenAnswer {
  readonly status: number;
  readonly body: { access_token?: string; refresh_token?: string; error?: string; error_description?: string };
}

interface RefreshTokenRow {
  id: string;
  grant_id: string | null;
  consumed_at: Date | null;
  successor_id: string | null;
  payload: Record<string, unknown>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The issuer and a client and user of its own, talking to it over HTTP. */
function retryFixture(suite: ReturnType<typeof issuerSuite>) {
  const fixture = {
    app: undefined as Credentials | undefined,
    other: undefined as Credentials | undefined,
  };
  beforeAll(async () => {
    const { stores } = suite.issuer;
    fixture.app = await registerClient(stores.clients, { name: 'mobile', grants: ['password', 'refresh_token'], scopes: ['orders:read'], resources: [ORDERS] });
    fixture.other = await registerClient(stores.clients, { name: 'other', grants: ['password', 'refresh_token'], scopes: ['orders:read'], resources: [ORDERS] });
    await createUser(stores.users, { username: 'alice', password: PASSWORD }, new PasswordHasher({ memoryKib: 19_456, timeCost: 2, parallelism: 1 }));
  });
  const client = (which: 'app' | 'other' = 'app'): Credentials => {
    const credentials = fixture[which];
    if (credentials === undefined) throw new Error('the suite has not started');
    return credentials;
  };
  const answer = async (response: Response): Promise<TokenAnswer> => ({ status: response.status, body: (await response.json()) as TokenAnswer['body'] });
  const refresh = async (refreshToken: string, as: 'app' | 'other' = 'app') =>
    answer(await postForm(suite.issuer.url, { grant_type: 'refresh_token', refresh_token: refreshToken }, client(as)));
  /** A new grant: its first refresh token. */
  const signIn = async (): Promise<string> => {
    const { status, body } = await answer(await postForm(suite.issuer.url, { grant_type: 'password', username: 'alice', password: PASSWORD, scope: 'orders:read' }, client()));
    expect(status).toBe(200);
    return body.refresh_token ?? '';
  };
  /** Signs in and refreshes once: the spent first token and its successor. */
  const rotated = async (): Promise<{ spent: string; successor: string; accessToken: string }> => {
    const spent = await signIn();
    const { status, body } = await refresh(spent);
    expect(status).toBe(200);
    return { spent, successor: body.refresh_token ?? '', accessToken: body.access_token ?? '' };
  };
  const row = (id: string) => suite.issuer.db('oidc_payloads').where({ type: 'RefreshToken', id }).first<RefreshTokenRow | undefined>();
  const liveTokensOfGrant = async (grantId: string) =>
    (await suite.issuer.db('oidc_payloads').where({ type: 'RefreshToken', grant_id: grantId }).whereNull('consumed_at').select<{ id: string }[]>('id')).map(({ id }) => id);
  return { refresh, signIn, rotated, row, liveTokensOfGrant };
}

describe.each(backends)('refresh token retry window ($name)', (backend) => {
  describe('REFRESH_TOKEN_RETRY_WINDOW at its default (10 s)', () => {
    const suite = issuerSuite(backend);
    const { refresh, signIn, rotated, row, liveTokensOfGrant } = retryFixture(suite);

    it('when a spent refresh token is presented again while its successor is unused, answers that same successor and a new access token; the successor still works', async () => {
      const { spent, successor, accessToken } = await rotated();
      const retry = await refresh(spent);
      expect(retry.status).toBe(200);
      expect(retry.body.refresh_token).toBe(successor);
      expect(retry.body.access_token).toEqual(expect.any(String));
      expect(claimsOf(retry.body.access_token ?? '')['jti']).not.toBe(claimsOf(accessToken)['jti']);
      expect(claimsOf(retry.body.access_token ?? '')).toMatchObject({ aud: ORDERS, scope: 'orders:read' });

      // a second retry is one too: still the same successor, never a second chain
      expect((await refresh(spent)).body.refresh_token).toBe(successor);
      const grantId = (await row(successor))?.grant_id ?? '';
      expect(await liveTokensOfGrant(grantId)).toEqual([successor]);

      const next = await refresh(successor);
      expect(next.status).toBe(200);
      expect(next.body.refresh_token).not.toBe(successor);
      expect((await refresh(next.body.refresh_token ?? '')).status).toBe(200);
    });

    it('when the successor has been used, presenting the spent token revokes the grant: the live token stops working', async () => {
      const { spent, successor } = await rotated();
      const next = await refresh(successor);
      expect(next.status).toBe(200);
      const grantId = (await row(successor))?.grant_id ?? '';

      expect(await refresh(spent)).toEqual({ status: 400, body: { error: 'invalid_grant', error_description: 'grant request is invalid' } });
      expect((await refresh(next.body.refresh_token ?? '')).body.error).toBe('invalid_grant');
      expect(await liveTokensOfGrant(grantId)).toEqual([]);
    });

    it('when another client presents the spent token, it is refused and the chain lives on', async () => {
      const { spent, successor } = await rotated();
      const stolen = await refresh(spent, 'other');
      expect(stolen.status).toBe(400);
      expect(stolen.body.error).toBe('invalid_grant');
      expect(stolen.body.refresh_token).toBeUndefined();
      // nor does the other client get anything with the live token
      expect((await refresh(successor, 'other')).body.error).toBe('invalid_grant');
      expect((await refresh(successor)).status).toBe(200);
    });

    it('when a live token is presented 10 times at once, every answer carries its one successor (a lost race is a retry, not a reuse)', async () => {
      const first = await signIn();
      const answers = await Promise.all(Array.from({ length: 10 }, () => refresh(first)));
      expect(answers.map(({ status }) => status)).toEqual(Array.from({ length: 10 }, () => 200));
      const successors = new Set(answers.map(({ body }) => body.refresh_token));
      expect(successors.size).toBe(1);
      const [successor] = [...successors];
      expect(await liveTokensOfGrant((await row(successor ?? ''))?.grant_id ?? '')).toEqual([successor]);
      expect((await refresh(successor ?? '')).status).toBe(200);
    });

    it('when the spent token is presented 10 times at once together with its successor, at most one chain lives', async () => {
      const { spent, successor } = await rotated();
      const grantId = (await row(successor))?.grant_id ?? '';
      const answers = await Promise.all([...Array.from({ length: 10 }, () => refresh(spent)), refresh(successor)]);
      const successorAnswer = answers[10];

      for (const { status, body } of answers) expect(status === 200 || body.error === 'invalid_grant').toBe(true);
      // every retry answered got the one successor; only the successor's own use made a new token
      const retried = new Set(answers.slice(0, 10).flatMap(({ body }) => (body.refresh_token === undefined ? [] : [body.refresh_token])));
      expect([...retried].every((token) => token === successor)).toBe(true);

      const live = await liveTokensOfGrant(grantId);
      expect(live.length).toBeLessThanOrEqual(1);
      if (live.length === 1) {
        // no reuse was found: the successor's own answer holds the chain's head, and it works
        expect(successorAnswer?.status).toBe(200);
        expect(live).toEqual([successorAnswer?.body.refresh_token]);
        expect((await refresh(live[0] ?? '')).status).toBe(200);
      } else {
        // a retry came after the successor's use: the grant was revoked, nothing works
        const handedOut = [spent, successor, ...(successorAnswer?.body.refresh_token === undefined ? [] : [successorAnswer.body.refresh_token])];
        for (const token of handedOut) expect((await refresh(token)).body.error).toBe('invalid_grant');
      }
    });
  });

  describe('REFRESH_TOKEN_RETRY_WINDOW=1', () => {
    const suite = issuerSuite(backend, { REFRESH_TOKEN_RETRY_WINDOW: '1' });
    const { refresh, rotated, row, liveTokensOfGrant } = retryFixture(suite);

    it('when the spent token is presented after the window, the grant is revoked even though the successor was never used', async () => {
      const { spent, successor } = await rotated();
      await sleep(1500);
      expect((await refresh(spent)).body.error).toBe('invalid_grant');
      expect((await refresh(successor)).body.error).toBe('invalid_grant');
    });

    it('after the window the sweep reduces a spent token to what reuse detection reads; presenting it still revokes the grant', async () => {
      const { spent, successor } = await rotated();
      const grantId = (await row(successor))?.grant_id ?? '';
      expect(await row(spent)).toMatchObject({ successor_id: successor, payload: expect.objectContaining({ resource: ORDERS, gty: expect.any(String) }) });
      await sleep(1500);
      expect(await suite.issuer.stores.payloads.sweepExpired({ retryWindow: 1 })).toBeGreaterThanOrEqual(1);

      const reduced = await row(spent);
      expect(reduced?.successor_id).toBeNull();
      expect(reduced?.consumed_at).toBeInstanceOf(Date);
      expect(Object.keys(reduced?.payload ?? {})).not.toEqual(expect.arrayContaining(['resource']));
      expect(reduced?.payload).not.toHaveProperty('gty');
      expect(reduced?.payload).not.toHaveProperty('rotations');
      expect(reduced?.payload).toMatchObject({ jti: spent, grantId });
      // the live successor is untouched
      expect((await row(successor))?.payload).toMatchObject({ resource: ORDERS });

      expect((await refresh(spent)).body.error).toBe('invalid_grant');
      expect((await refresh(successor)).body.error).toBe('invalid_grant');
      expect(await liveTokensOfGrant(grantId)).toEqual([]);
      expect(await row(spent)).toBeUndefined();
    });
  });

  describe('REFRESH_TOKEN_RETRY_WINDOW=0', () => {
    const suite = issuerSuite(backend, { REFRESH_TOKEN_RETRY_WINDOW: '0' });
    const { refresh, rotated } = retryFixture(suite);

    it('when the window is 0, any reuse revokes the grant at once, as before', async () => {
      const { spent, successor } = await rotated();
      expect((await refresh(spent)).body.error).toBe('invalid_grant');
      expect((await refresh(successor)).body.error).toBe('invalid_grant');
    });
  });
});
