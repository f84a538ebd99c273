import { beforeEach, describe, expect, it } from '@jest/globals';

import { createClient } from '../../src/domain/clients.js';
import { hashSecret } from '../../src/domain/secrets.js';
import { PasswordHasher } from '../../src/domain/passwords.js';
import { createUser } from '../../src/domain/users.js';
import { adapterFactory, PayloadAdapter } from '../../src/oidc/adapter.js';
import { loadClientMetadata } from '../../src/oidc/client-metadata.js';
import { finishRotation, pendingRotation, retriedSuccessor } from '../../src/oidc/refresh-rotation.js';
import { readAheadOf } from '../../src/oidc/request-read-ahead.js';
import { backends } from '../support/backends.js';
import { storageSuite } from '../support/storage.js';

const TABLE = 'oidc_payloads';

interface Row {
  type: string;
  id: string;
  grant_id: string | null;
  uid: string | null;
  user_code: string | null;
  expires_at: Date | null;
  consumed_at: Date | null;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const nowSeconds = () => Math.floor(Date.now() / 1000);

describe.each(backends)('oidc-provider storage adapter ($name)', (backend) => {
  const storage = storageSuite(backend);
  const db = (table: string) => storage.database.knex(table);

  const row = (type: string, id: string) =>
    db(TABLE).select<Row[]>('type', 'id', 'grant_id', 'uid', 'user_code', 'expires_at', 'consumed_at').where({ type, id }).first();

  beforeEach(async () => {
    await db(TABLE).delete();
  });

  /** A grant to store refresh tokens under (a refresh token is stored only while its grant exists). */
  const grant = (id: string) => new PayloadAdapter(storage.stores.payloads, 'Grant', () => undefined).upsert(id, { jti: id }, 600);

  describe('PayloadAdapter', () => {
    it('when a payload is upserted, find returns it unchanged', async () => {
      const adapter = new PayloadAdapter(storage.stores.payloads, 'RefreshToken');
      const payload = {
        jti: 'rt-1',
        kind: 'RefreshToken',
        accountId: 'user-1',
        clientId: 'client-1',
        grantId: 'grant-1',
        scope: 'openid orders:read',
        rotations: 0,
        resource: 'http://localhost:4001',
        iat: 1_700_000_000,
        exp: 1_700_086_400,
        nested: { claims: ['a', 'b'], flag: true, nothing: null },
      };
      await grant('grant-1');
      await adapter.upsert('rt-1', payload, 3600);
      expect(await adapter.find('rt-1')).toEqual(payload);
      const stored = await row('RefreshToken', 'rt-1');
      expect(stored).toMatchObject({ type: 'RefreshToken', id: 'rt-1', grant_id: 'grant-1', uid: null, user_code: null, consumed_at: null });
      const expiresAt = new Date(stored?.expires_at ?? 0).getTime();
      expect(Math.abs(expiresAt - (Date.now() + 3600 * 1000))).toBeLessThan(10_000);
    });

    it('when an id is upserted again, every column is replaced (grant, uid, user code, expiry, consumption)', async () => {
      const adapter = new PayloadAdapter(storage.stores.payloads, 'Interaction');
      await adapter.upsert('int-1', { jti: 'int-1', grantId: 'grant-old', uid: 'uid-old', userCode: 'CODE-OLD', step: 1 }, 60);
      await adapter.consume('int-1');
      expect((await row('Interaction', 'int-1'))?.consumed_at).not.toBeNull();

      await adapter.upsert('int-1', { jti: 'int-1', grantId: 'grant-new', uid: 'uid-new', step: 2 });
      expect(await adapter.find('int-1')).toEqual({ jti: 'int-1', grantId: 'grant-new', uid: 'uid-new', step: 2 });
      expect(await row('Interaction', 'int-1')).toEqual({
        type: 'Interaction',
        id: 'int-1',
        grant_id: 'grant-new',
        uid: 'uid-new',
        user_code: null,
        expires_at: null,
        consumed_at: null,
      });
      expect(await adapter.findByUid('uid-old')).toBeUndefined();
      expect(await adapter.findByUserCode('CODE-OLD')).toBeUndefined();
      await adapter.revokeByGrantId('grant-old');
      expect(await adapter.find('int-1')).toEqual({ jti: 'int-1', grantId: 'grant-new', uid: 'uid-new', step: 2 });
      expect(Number((await db(TABLE).count<{ count: string | number }[]>('* as count'))[0]?.count)).toBe(1);
    });

    it('when an id is unknown, find, findByUid and findByUserCode return undefined', async () => {
      const adapter = new PayloadAdapter(storage.stores.payloads, 'Session');
      expect(await adapter.find('nope')).toBeUndefined();
      expect(await adapter.findByUid('nope')).toBeUndefined();
      expect(await adapter.findByUserCode('nope')).toBeUndefined();
    });

    it('when the same id is stored by two models, each model sees only its own', async () => {
      const codes = new PayloadAdapter(storage.stores.payloads, 'AuthorizationCode');
      const sessions = new PayloadAdapter(storage.stores.payloads, 'Session');
      await codes.upsert('shared', { kind: 'AuthorizationCode' }, 60);
      expect(await sessions.find('shared')).toBeUndefined();
      await sessions.upsert('shared', { kind: 'Session' }, 60);
      expect(await codes.find('shared')).toEqual({ kind: 'AuthorizationCode' });
      expect(await sessions.find('shared')).toEqual({ kind: 'Session' });
      await sessions.destroy('shared');
      expect(await codes.find('shared')).toEqual({ kind: 'AuthorizationCode' });
    });

    it('when expiresIn has passed, find returns undefined although the row is still there', async () => {
      const adapter = new PayloadAdapter(storage.stores.payloads, 'AuthorizationCode');
      await adapter.upsert('short', { jti: 'short', uid: 'uid-short', userCode: 'SHORT' }, 1);
      await adapter.upsert('long', { jti: 'long' }, 60);
      expect(await adapter.find('short')).toEqual({ jti: 'short', uid: 'uid-short', userCode: 'SHORT' });
      await sleep(1100);
      expect(await adapter.find('short')).toBeUndefined();
      expect(await adapter.findByUid('uid-short')).toBeUndefined();
      expect(await adapter.findByUserCode('SHORT')).toBeUndefined();
      expect(await row('AuthorizationCode', 'short')).toBeDefined();
      expect(await adapter.find('long')).toEqual({ jti: 'long' });
    });

    it('when a payload is consumed, find returns it with a numeric consumed (epoch seconds)', async () => {
      const adapter = new PayloadAdapter(storage.stores.payloads, 'AuthorizationCode');
      await adapter.upsert('code-1', { jti: 'code-1', grantId: 'g' }, 60);
      expect(await adapter.find('code-1')).toEqual({ jti: 'code-1', grantId: 'g' });
      const before = nowSeconds();
      await adapter.consume('code-1');
      const found = await adapter.find('code-1');
      expect(found).toEqual({ jti: 'code-1', grantId: 'g', consumed: expect.any(Number) });
      expect(Number.isInteger(found?.consumed)).toBe(true);
      expect(Math.abs(Number(found?.consumed) - before)).toBeLessThanOrEqual(5);
    });

    it.each([
      ['AuthorizationCode', 'grant already used'],
      ['RefreshToken', 'refresh token already used'],
    ])('when the %s is consumed a second time, refuses with invalid_grant and revokes its whole grant (S3, S5)', async (model, detail) => {
      const adapter = new PayloadAdapter(storage.stores.payloads, model);
      const grants = new PayloadAdapter(storage.stores.payloads, 'Grant');
      const otherModel = new PayloadAdapter(storage.stores.payloads, model === 'RefreshToken' ? 'AuthorizationCode' : 'RefreshToken');
      await grants.upsert('grant-1', { jti: 'grant-1' }, 600);
      await grants.upsert('grant-2', { jti: 'grant-2' }, 600);
      await adapter.upsert('spent', { grantId: 'grant-1' }, 600);
      await adapter.upsert('sibling', { grantId: 'grant-1' }, 600);
      await otherModel.upsert('cousin', { grantId: 'grant-1' }, 600);
      await adapter.upsert('unrelated', { grantId: 'grant-2' }, 600);

      await adapter.consume('spent');
      const error = await adapter.consume('spent').then(
        () => undefined,
        (reason: unknown) => reason,
      );
      expect(error).toMatchObject({ status: 400, error: 'invalid_grant', error_detail: detail });

      expect(await adapter.find('spent')).toBeUndefined();
      expect(await adapter.find('sibling')).toBeUndefined();
      expect(await otherModel.find('cousin')).toBeUndefined();
      expect(await grants.find('grant-1')).toBeUndefined();
      expect(await adapter.find('unrelated')).toEqual({ grantId: 'grant-2' });
      expect(await grants.find('grant-2')).toEqual({ jti: 'grant-2' });
    });

    it('when two requests consume the same code at once, exactly one succeeds', async () => {
      const adapter = new PayloadAdapter(storage.stores.payloads, 'AuthorizationCode');
      await adapter.upsert('raced', { grantId: 'grant-raced' }, 600);
      const outcomes = await Promise.allSettled([adapter.consume('raced'), adapter.consume('raced')]);
      expect(outcomes.map((outcome) => outcome.status).sort()).toEqual(['fulfilled', 'rejected']);
    });

    it('when looked up by uid or user code, the matching payload is returned', async () => {
      const adapter = new PayloadAdapter(storage.stores.payloads, 'Session');
      await adapter.upsert('sess-1', { jti: 'sess-1', uid: 'uid-1', userCode: 'ABCD-EFGH' }, 60);
      await adapter.upsert('sess-2', { jti: 'sess-2', uid: 'uid-2' }, 60);
      expect(await adapter.findByUid('uid-1')).toEqual({ jti: 'sess-1', uid: 'uid-1', userCode: 'ABCD-EFGH' });
      expect(await adapter.findByUid('uid-2')).toEqual({ jti: 'sess-2', uid: 'uid-2' });
      expect(await adapter.findByUserCode('ABCD-EFGH')).toEqual({ jti: 'sess-1', uid: 'uid-1', userCode: 'ABCD-EFGH' });
      expect(await new PayloadAdapter(storage.stores.payloads, 'Interaction').findByUid('uid-1')).toBeUndefined();
    });

    it('when destroyed, the payload is gone and others stay', async () => {
      const adapter = new PayloadAdapter(storage.stores.payloads, 'Grant');
      await adapter.upsert('grant-a', { jti: 'grant-a' }, 60);
      await adapter.upsert('grant-b', { jti: 'grant-b' }, 60);
      await adapter.destroy('grant-a');
      expect(await adapter.find('grant-a')).toBeUndefined();
      expect(await row('Grant', 'grant-a')).toBeUndefined();
      expect(await adapter.find('grant-b')).toEqual({ jti: 'grant-b' });
    });

    it("when a grant is revoked through one model, only that model's rows of that grant are removed", async () => {
      const refreshTokens = new PayloadAdapter(storage.stores.payloads, 'RefreshToken');
      const codes = new PayloadAdapter(storage.stores.payloads, 'AuthorizationCode');
      await grant('shared-grant');
      await grant('other-grant');
      await refreshTokens.upsert('rt-1', { grantId: 'shared-grant' }, 60);
      await refreshTokens.upsert('rt-2', { grantId: 'shared-grant' }, 60);
      await refreshTokens.upsert('rt-3', { grantId: 'other-grant' }, 60);
      await codes.upsert('code-1', { grantId: 'shared-grant' }, 60);

      await refreshTokens.revokeByGrantId('shared-grant');

      expect(await refreshTokens.find('rt-1')).toBeUndefined();
      expect(await refreshTokens.find('rt-2')).toBeUndefined();
      expect(await refreshTokens.find('rt-3')).toEqual({ grantId: 'other-grant' });
      expect(await codes.find('code-1')).toEqual({ grantId: 'shared-grant' });

      await codes.revokeByGrantId('shared-grant');
      expect(await codes.find('code-1')).toBeUndefined();
      expect(await refreshTokens.find('rt-3')).toEqual({ grantId: 'other-grant' });
    });
  });

  describe('within one engine request: a refresh in two round trips', () => {
    /** One engine request: its koa context and the adapters of the models a refresh touches. */
    const request = () => {
      const ctx = {};
      const reads = () => readAheadOf(ctx);
      return {
        ctx,
        reads,
        refreshTokens: new PayloadAdapter(storage.stores.payloads, 'RefreshToken', () => ctx),
        grants: new PayloadAdapter(storage.stores.payloads, 'Grant', () => ctx),
      };
    };
    const rejection = (promise: Promise<unknown>) =>
      promise.then(
        () => undefined,
        (reason: unknown) => reason,
      );

    beforeEach(async () => {
      await db('user_roles').delete();
      await db('users').delete();
    });

    it('reads the refresh token with its grant and its user (with roles); the grant is then served without a query, once', async () => {
      const user = await createUser(storage.stores.users, { username: 'rita', password: 'correct horse battery', roles: ['viewer', 'admin'] }, new PasswordHasher({ memoryKib: 19_456, timeCost: 2, parallelism: 1 }));
      const standalone = new PayloadAdapter(storage.stores.payloads, 'Grant', () => undefined);
      await standalone.upsert('grant-r', { jti: 'grant-r', accountId: user.id }, 600);
      await new PayloadAdapter(storage.stores.payloads, 'RefreshToken', () => undefined).upsert('rt-r', { jti: 'rt-r', grantId: 'grant-r', accountId: user.id }, 600);

      const { reads, refreshTokens, grants } = request();
      expect(await refreshTokens.find('rt-r')).toEqual({ jti: 'rt-r', grantId: 'grant-r', accountId: user.id });
      expect(await reads().users.get(user.id)).toEqual({ ...user, roles: ['admin', 'viewer'] });
      // gone from the database since: the request still sees what it read with the token
      await standalone.destroy('grant-r');
      expect(await grants.find('grant-r')).toEqual({ jti: 'grant-r', accountId: user.id });
      // served once: a second lookup reads the database
      expect(await grants.find('grant-r')).toBeUndefined();
    });

    it('reads an absent grant or user as absent, and a token naming no valid user id as having none', async () => {
      await grant('no-grant');
      await new PayloadAdapter(storage.stores.payloads, 'RefreshToken', () => undefined).upsert('rt-x', { jti: 'rt-x', grantId: 'no-grant', accountId: 'not-a-uuid' }, 600);
      await new PayloadAdapter(storage.stores.payloads, 'Grant', () => undefined).destroy('no-grant');
      const { reads, refreshTokens, grants } = request();
      expect(await refreshTokens.find('rt-x')).toEqual({ jti: 'rt-x', grantId: 'no-grant', accountId: 'not-a-uuid' });
      expect(await reads().users.get('not-a-uuid')).toBeUndefined();
      expect(await grants.find('no-grant')).toBeUndefined();
      expect(await refreshTokens.find('no-such-token')).toBeUndefined();
    });

    it('puts off consuming the refresh token to its successor\'s insert, and does both in one statement', async () => {
      await grant('g');
      await new PayloadAdapter(storage.stores.payloads, 'RefreshToken', () => undefined).upsert('rt-old', { jti: 'rt-old', grantId: 'g' }, 600);
      const { refreshTokens } = request();
      await refreshTokens.consume('rt-old');
      expect((await row('RefreshToken', 'rt-old'))?.consumed_at).toBeNull();
      await refreshTokens.upsert('rt-new', { jti: 'rt-new', grantId: 'g' }, 600);
      expect((await row('RefreshToken', 'rt-old'))?.consumed_at).toBeInstanceOf(Date);
      expect(await refreshTokens.find('rt-new')).toEqual({ jti: 'rt-new', grantId: 'g' });
    });

    it('when the token was consumed meanwhile, inserts no successor, revokes the grant and refuses with invalid_grant (S5)', async () => {
      const standalone = new PayloadAdapter(storage.stores.payloads, 'RefreshToken', () => undefined);
      await new PayloadAdapter(storage.stores.payloads, 'Grant', () => undefined).upsert('g-reuse', { jti: 'g-reuse' }, 600);
      await standalone.upsert('rt-reused', { jti: 'rt-reused', grantId: 'g-reuse' }, 600);
      await standalone.upsert('rt-sibling', { jti: 'rt-sibling', grantId: 'g-reuse' }, 600);
      const { refreshTokens } = request();
      await refreshTokens.consume('rt-reused');
      await standalone.consume('rt-reused');
      const error = await rejection(refreshTokens.upsert('rt-successor', { jti: 'rt-successor', grantId: 'g-reuse' }, 600));
      expect(error).toMatchObject({ status: 400, error: 'invalid_grant', error_detail: 'refresh token already used' });
      expect(await row('RefreshToken', 'rt-successor')).toBeUndefined();
      expect(await row('RefreshToken', 'rt-sibling')).toBeUndefined();
      expect(await row('Grant', 'g-reuse')).toBeUndefined();
    });

    it('when two requests rotate the same token at once, exactly one gets a successor', async () => {
      await grant('g-raced');
      await new PayloadAdapter(storage.stores.payloads, 'RefreshToken', () => undefined).upsert('rt-raced', { jti: 'rt-raced', grantId: 'g-raced' }, 600);
      const rotate = async (successor: string) => {
        const { refreshTokens } = request();
        await refreshTokens.consume('rt-raced');
        await refreshTokens.upsert(successor, { jti: successor, grantId: 'g-raced' }, 600);
      };
      const outcomes = await Promise.allSettled([rotate('rt-a'), rotate('rt-b')]);
      expect(outcomes.map((outcome) => outcome.status).sort()).toEqual(['fulfilled', 'rejected']);
      // the loser's reuse revoked the grant, the winner's successor with it
      expect(await db(TABLE).whereIn('id', ['rt-a', 'rt-b', 'rt-raced'])).toEqual([]);
    });

    it('when a code replay revokes the grant before the winner stores its refresh token, the token is refused and never stored (S3)', async () => {
      await grant('g-code');
      const codes = new PayloadAdapter(storage.stores.payloads, 'AuthorizationCode', () => undefined);
      await codes.upsert('code-w', { jti: 'code-w', grantId: 'g-code' }, 600);
      const winner = request();
      await new PayloadAdapter(storage.stores.payloads, 'AuthorizationCode', () => winner.ctx).consume('code-w');
      // the replay loses the consumption and revokes the grant while the winner is still at work
      expect(await rejection(new PayloadAdapter(storage.stores.payloads, 'AuthorizationCode', () => request().ctx).consume('code-w'))).toMatchObject({ error: 'invalid_grant' });
      const refused = await rejection(winner.refreshTokens.upsert('rt-winner', { jti: 'rt-winner', grantId: 'g-code' }, 600));
      expect(refused).toMatchObject({ status: 400, error: 'invalid_grant', error_detail: 'grant revoked' });
      expect(await row('RefreshToken', 'rt-winner')).toBeUndefined();
      expect(await row('Grant', 'g-code')).toBeUndefined();
    });

    it('when the engine revokes a grant on the token endpoint while its refresh token is being stored, neither survives', async () => {
      for (let round = 0; round < 5; round += 1) {
        const grantId = `g-race-${round}`;
        await grant(grantId);
        const winner = request();
        // the engine's revoke after a replayed code: once per model, and the grant itself
        const loser = request();
        const revoke = Promise.all(['AccessToken', 'RefreshToken', 'AuthorizationCode'].map((model) => new PayloadAdapter(storage.stores.payloads, model, () => loser.ctx).revokeByGrantId(grantId)));
        const store = winner.refreshTokens.upsert(`rt-${round}`, { jti: `rt-${round}`, grantId }, 600).catch(() => undefined);
        await Promise.all([store, revoke, new PayloadAdapter(storage.stores.payloads, 'Grant', () => loser.ctx).destroy(grantId)]);
        expect(await db(TABLE).where({ grant_id: grantId })).toEqual([]);
        expect(await row('Grant', grantId)).toBeUndefined();
      }
    });

    it('a put-off rotation of a token spent within the retry window answers its unused successor, stores nothing new, and revokes nothing', async () => {
      await grant('g-retry');
      const standalone = new PayloadAdapter(storage.stores.payloads, 'RefreshToken', () => undefined);
      await standalone.upsert('rt-p', { jti: 'rt-p', grantId: 'g-retry' }, 600);
      const inWindow = (ctx: object) => new PayloadAdapter(storage.stores.payloads, 'RefreshToken', () => ctx, 10);
      const first = request();
      await inWindow(first.ctx).consume('rt-p');
      await inWindow(first.ctx).upsert('rt-s', { jti: 'rt-s', grantId: 'g-retry' }, 600);
      expect(await db(TABLE).where({ type: 'RefreshToken', id: 'rt-p' }).first('successor_id')).toEqual({ successor_id: 'rt-s' });
      expect(retriedSuccessor(first.ctx)).toBeUndefined();

      // the retry: found as unspent (so the engine checks and rotates it), then answered with rt-s
      const retry = request();
      expect(await inWindow(retry.ctx).find('rt-p')).toEqual({ jti: 'rt-p', grantId: 'g-retry' });
      expect(await standalone.find('rt-p')).toMatchObject({ consumed: expect.any(Number) });
      await inWindow(retry.ctx).consume('rt-p');
      await inWindow(retry.ctx).upsert('rt-minted', { jti: 'rt-minted', grantId: 'g-retry' }, 600);
      expect(retriedSuccessor(retry.ctx)).toBe('rt-s');
      expect(await row('RefreshToken', 'rt-minted')).toBeUndefined();
      expect((await row('RefreshToken', 'rt-s'))?.consumed_at).toBeNull();

      // once rt-s is used, the same retry is a reuse: the grant goes
      await standalone.consume('rt-s');
      const late = request();
      await inWindow(late.ctx).consume('rt-p');
      expect(await rejection(inWindow(late.ctx).upsert('rt-late', { jti: 'rt-late', grantId: 'g-retry' }, 600))).toMatchObject({ error_detail: 'refresh token already used' });
      expect(await db(TABLE).where({ grant_id: 'g-retry' })).toEqual([]);
    });

    it('with no retry window (the default, and REFRESH_TOKEN_RETRY_WINDOW=0) a spent token is found spent', async () => {
      await grant('g-none');
      await new PayloadAdapter(storage.stores.payloads, 'RefreshToken', () => undefined).upsert('rt-none', { jti: 'rt-none', grantId: 'g-none' }, 600);
      const { ctx, refreshTokens } = request();
      await refreshTokens.consume('rt-none');
      await refreshTokens.upsert('rt-none-s', { jti: 'rt-none-s', grantId: 'g-none' }, 600);
      expect(await request().refreshTokens.find('rt-none')).toMatchObject({ consumed: expect.any(Number) });
      expect(retriedSuccessor(ctx)).toBeUndefined();
      expect(await storage.stores.payloads.unusedSuccessor('rt-none', 0)).toBeUndefined();
      expect(await storage.stores.payloads.unusedSuccessor('rt-none', 10)).toBe('rt-none-s');
    });

    it('when the request ends without a successor, the put-off consumption still happens', async () => {
      await grant('g');
      await new PayloadAdapter(storage.stores.payloads, 'RefreshToken', () => undefined).upsert('rt-alone', { jti: 'rt-alone', grantId: 'g' }, 600);
      const { ctx, refreshTokens } = request();
      await refreshTokens.consume('rt-alone');
      await finishRotation(storage.stores.payloads, ctx);
      expect((await row('RefreshToken', 'rt-alone'))?.consumed_at).toBeInstanceOf(Date);
      expect(pendingRotation(ctx)).toBeUndefined();
      // nothing left to do the second time, and nothing for a request that never consumed
      await finishRotation(storage.stores.payloads, ctx);
      await finishRotation(storage.stores.payloads, {});
    });

    it('other models, and refresh tokens outside a request, are consumed at once', async () => {
      const { ctx } = request();
      const codes = new PayloadAdapter(storage.stores.payloads, 'AuthorizationCode', () => ctx);
      await codes.upsert('code-now', { jti: 'code-now' }, 600);
      await codes.consume('code-now');
      expect((await row('AuthorizationCode', 'code-now'))?.consumed_at).toBeInstanceOf(Date);
      const outside = new PayloadAdapter(storage.stores.payloads, 'RefreshToken', () => undefined);
      await outside.upsert('rt-now', { jti: 'rt-now' }, 600);
      await outside.consume('rt-now');
      expect((await row('RefreshToken', 'rt-now'))?.consumed_at).toBeInstanceOf(Date);
      expect(pendingRotation(ctx)).toBeUndefined();
    });
  });

  describe('PayloadStore.sweepExpired', () => {
    it('when rows have expired, removes exactly those and returns how many', async () => {
      const adapter = new PayloadAdapter(storage.stores.payloads, 'AuthorizationCode');
      for (const id of ['old-1', 'old-2', 'old-3', 'old-4', 'old-5']) await adapter.upsert(id, { jti: id }, -60);
      await adapter.upsert('live', { jti: 'live' }, 600);
      await adapter.upsert('forever', { jti: 'forever' });

      // a batch size below the backlog: the sweep goes round until none is left
      expect(await storage.stores.payloads.sweepExpired({ batchSize: 2 })).toBe(5);

      const left = await db(TABLE).select<{ id: string }[]>('id').orderBy('id');
      expect(left.map(({ id }) => id)).toEqual(['forever', 'live']);
      expect(await adapter.find('live')).toEqual({ jti: 'live' });
      expect(await adapter.find('forever')).toEqual({ jti: 'forever' });
      expect(await storage.stores.payloads.sweepExpired()).toBe(0);
    });

    it('reduces refresh tokens spent longer ago than the retry window to what reuse detection reads, once; live and recently spent ones stay whole', async () => {
      await grant('g-sweep');
      const refreshTokens = new PayloadAdapter(storage.stores.payloads, 'RefreshToken', () => undefined);
      const whole = { grantId: 'g-sweep', clientId: 'c', accountId: 'a', scope: 'orders:read', iat: 1, exp: 4_000_000_000, resource: 'http://localhost:4001', claims: { userinfo: { email: null } }, nonce: 'n', rotations: 2, gty: 'password refresh_token' };
      for (const id of ['rt-spent', 'rt-recent', 'rt-live']) await refreshTokens.upsert(id, { jti: id, ...whole }, 600);
      await storage.stores.payloads.rotateRefreshToken('rt-spent', { type: 'RefreshToken', id: 'rt-next', payload: { jti: 'rt-next', ...whole }, expiresAt: new Date(Date.now() + 600_000) });
      await db(TABLE).where({ type: 'RefreshToken', id: 'rt-spent' }).update({ consumed_at: storage.database.knex.raw("CURRENT_TIMESTAMP - interval '1 minute'") });
      await refreshTokens.consume('rt-recent');

      expect(await storage.stores.payloads.sweepExpired({ retryWindow: 10 })).toBe(1);
      const spent = await db(TABLE).where({ type: 'RefreshToken', id: 'rt-spent' }).first<{ payload: Record<string, unknown>; successor_id: string | null; consumed_at: Date | null }>();
      expect(spent?.payload).toEqual({ jti: 'rt-spent', grantId: 'g-sweep', clientId: 'c', accountId: 'a', scope: 'orders:read', iat: 1, exp: 4_000_000_000 });
      expect(spent?.successor_id).toBeNull();
      expect(spent?.consumed_at).toBeInstanceOf(Date);
      for (const id of ['rt-recent', 'rt-live', 'rt-next']) expect(await refreshTokens.find(id)).toMatchObject({ resource: 'http://localhost:4001', nonce: 'n' });
      // nothing left to reduce the second time
      expect(await storage.stores.payloads.sweepExpired({ retryWindow: 10 })).toBe(0);
      expect(await storage.stores.payloads.unusedSuccessor('rt-spent', 3600)).toBeUndefined();
    });

    it('when nothing has expired, removes nothing and returns 0', async () => {
      await new PayloadAdapter(storage.stores.payloads, 'Session').upsert('s', { jti: 's' }, 600);
      expect(await storage.stores.payloads.sweepExpired()).toBe(0);
      expect(await new PayloadAdapter(storage.stores.payloads, 'Session').find('s')).toEqual({ jti: 's' });
    });
  });

  describe("adapterFactory('Client')", () => {
    it('when a confidential client exists, find returns its metadata with the SHA-256 digest of the secret, never the secret', async () => {
      const created = await createClient(storage.stores.clients, {
        name: 'billing',
        grants: ['client_credentials'],
        scopes: ['orders:read', 'openid'],
        roles: ['admin', 'billing'],
        resources: ['http://localhost:4001', 'http://localhost:4002'],
      });
      const secret = created.clientSecret ?? '';
      const metadata = await adapterFactory(storage.stores.payloads, (id) => loadClientMetadata(storage.stores.clients, id))('Client').find(created.client.id);
      expect(metadata).toEqual({
        client_id: created.client.id,
        client_name: 'billing',
        client_secret: hashSecret(secret),
        token_endpoint_auth_method: 'client_secret_basic',
        // registered with no --auth: either way of presenting the secret, so no secret_methods
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        post_logout_redirect_uris: [],
        application_type: 'web',
        scope: 'openid',
        allowed_scopes: ['orders:read', 'openid'],
        roles: ['admin', 'billing'],
        resources: ['http://localhost:4001', 'http://localhost:4002'],
        first_party: false,
      });
      expect(metadata?.['client_secret']).toMatch(/^[0-9a-f]{64}$/u);
      expect(JSON.stringify(metadata)).not.toContain(secret);
    });

    it('when a public native client exists, find returns it without a secret, auth method none, application_type native', async () => {
      const created = await createClient(storage.stores.clients, {
        name: 'cli-app',
        grants: ['authorization_code', 'refresh_token'],
        scopes: ['orders:read'],
        redirectUris: ['http://127.0.0.1:8080/cb', 'com.example.app:/cb'],
        resources: ['http://localhost:4001'],
        public: true,
        firstParty: true,
      });
      expect(created.clientSecret).toBeUndefined();
      const metadata = await adapterFactory(storage.stores.payloads, (id) => loadClientMetadata(storage.stores.clients, id))('Client').find(created.client.id);
      expect(metadata).toEqual({
        client_id: created.client.id,
        client_name: 'cli-app',
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: ['http://127.0.0.1:8080/cb', 'com.example.app:/cb'],
        post_logout_redirect_uris: [],
        application_type: 'native',
        allowed_scopes: ['orders:read'],
        roles: [],
        resources: ['http://localhost:4001'],
        first_party: true,
      });
      expect(metadata).not.toHaveProperty('client_secret');
    });

    it('when the client id is unknown, find returns undefined', async () => {
      expect(await adapterFactory(storage.stores.payloads, (id) => loadClientMetadata(storage.stores.clients, id))('Client').find('0123456789abcdef0123456789abcdef')).toBeUndefined();
    });
  });
});
