import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';

import { createGuard, InvalidToken, VerifierUnavailable, type Guard } from '../src/index.js';
import { accessToken, AUDIENCE, ISSUER, JwksServer, listen, signingKey, type SigningKey } from './support.js';

type Entry =
  | { jti: string; expires_at: number }
  | { grant_id: string; expires_at: number }
  | { client_id: string; revoked_at: number; expires_at: number }
  // a kind a later issuer may add
  | Record<string, unknown>;

/**
 * A local revocation feed (the issuer's `GET /token/revocations`): entries are numbered in the
 * order they are added, the cursor is the last number listed, pages hold `pageSize` entries;
 * `failWith` makes every request fail with that status. Records what each request asked.
 */
class FeedServer {
  readonly entries: Entry[] = [];
  pageSize = 1000;
  failWith: number | undefined;
  readonly requests: { since: string | null; authorization: string | undefined }[] = [];
  #served: { url: string; close(): Promise<void> } | undefined;

  get url(): string {
    if (this.#served === undefined) throw new Error('FeedServer not started');
    return `${this.#served.url}/token/revocations`;
  }

  async start(): Promise<void> {
    this.#served = await listen((req, res) => {
      const since = new URL(req.url ?? '/', 'http://feed').searchParams.get('since');
      this.requests.push({ since, authorization: req.headers.authorization });
      if (this.failWith !== undefined) {
        res.writeHead(this.failWith, { 'content-type': 'application/json' });
        res.end('{"error":"temporarily_unavailable"}');
        return;
      }
      const from = since === null ? 0 : Number(since);
      const page = this.entries.slice(from, from + this.pageSize);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ revocations: page, next_cursor: String(from + page.length), has_more: from + page.length < this.entries.length }));
    });
  }

  async stop(): Promise<void> {
    await this.#served?.close();
  }
}

describe('guard: the revocation feed', () => {
  const jwks = new JwksServer();
  const feed = new FeedServer();
  let key: SigningKey;
  let clock = Date.now();
  const guards: Guard[] = [];
  const inAnHour = () => Math.floor(clock / 1000) + 3600;

  const guardWith = (staleIfErrorMs = 60_000): Guard => {
    const guard = createGuard({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwksUri: jwks.url,
      now: () => clock,
      // long: every poll below is made by the test itself
      revocations: { clientId: 'orders-api', clientSecret: 's3cret', feedUri: feed.url, intervalMs: 3_600_000, staleIfErrorMs },
    });
    guards.push(guard);
    return guard;
  };
  const poll = (guard: Guard) => guard.revocations?.poll();

  beforeAll(async () => {
    key = await signingKey('k1');
    jwks.keys = [key.publicJwk];
    await jwks.start();
    await feed.start();
  });

  afterEach(() => {
    for (const guard of guards.splice(0)) guard.close();
    feed.entries.length = 0;
    feed.failWith = undefined;
    feed.pageSize = 1000;
    feed.requests.length = 0;
    clock = Date.now();
  });

  afterAll(async () => {
    await feed.stop();
    await jwks.stop();
  });

  it('when a verified and cached token is listed at the next poll, it is refused from the cache and on verification', async () => {
    const guard = guardWith();
    const token = await accessToken(key, { jti: 'j-1' });
    await expect(guard.verifier.verify(token)).resolves.toMatchObject({ sub: 'user-1' });
    expect(guard.verifier.cached(token)).toBeDefined();

    feed.entries.push({ jti: 'j-1', expires_at: inAnHour() });
    await poll(guard);
    expect(guard.verifier.cached(token)).toBeUndefined();
    await expect(guard.verifier.verify(token)).rejects.toBeInstanceOf(InvalidToken);
    // the service's own client authenticates the polls
    expect(feed.requests.at(-1)?.authorization).toBe(`Basic ${Buffer.from('orders-api:s3cret').toString('base64')}`);
  });

  it('when a grant is listed, every token carrying its grant_id is refused; other tokens are not', async () => {
    const guard = guardWith();
    feed.entries.push({ grant_id: 'g-1', expires_at: inAnHour() });
    await poll(guard);
    await expect(guard.verifier.verify(await accessToken(key, { grant_id: 'g-1' }))).rejects.toBeInstanceOf(InvalidToken);
    await expect(guard.verifier.verify(await accessToken(key, { grant_id: 'g-2' }))).resolves.toMatchObject({ sub: 'user-1' });
  });

  it('when a client is listed, its tokens issued at or before revoked_at are refused, from the cache too; its later tokens and other clients\' are not', async () => {
    const guard = guardWith();
    const now = Math.floor(clock / 1000);
    const before = await accessToken(key, { client_id: 'leaky', sub: 'leaky', iat: now - 60 });
    const atTheMoment = await accessToken(key, { client_id: 'leaky', sub: 'leaky', iat: now });
    const after = await accessToken(key, { client_id: 'leaky', sub: 'leaky', iat: now + 1 });
    const otherClient = await accessToken(key, { client_id: 'steady', sub: 'steady', iat: now - 60 });
    await poll(guard);
    await expect(guard.verifier.verify(before)).resolves.toMatchObject({ kind: 'client', sub: 'leaky' });
    expect(guard.verifier.cached(before)).toBeDefined();

    feed.entries.push({ client_id: 'leaky', revoked_at: now, expires_at: now + 86_400 });
    await poll(guard);
    expect(guard.verifier.cached(before)).toBeUndefined();
    for (const token of [before, atTheMoment]) await expect(guard.verifier.verify(token)).rejects.toBeInstanceOf(InvalidToken);
    await expect(guard.verifier.verify(after)).resolves.toMatchObject({ sub: 'leaky' });
    await expect(guard.verifier.verify(otherClient)).resolves.toMatchObject({ sub: 'steady' });
  });

  it('when a client is listed again with a later revoked_at, tokens up to the later moment are refused, whatever the order the entries came in', async () => {
    const now = Math.floor(clock / 1000);
    const between = await accessToken(key, { client_id: 'twice', sub: 'twice', iat: now - 30 });
    for (const moments of [
      [now - 60, now],
      [now, now - 60],
    ]) {
      const guard = guardWith();
      for (const moment of moments) feed.entries.push({ client_id: 'twice', revoked_at: moment, expires_at: moment + 86_400 });
      await poll(guard);
      await expect(guard.verifier.verify(between)).rejects.toBeInstanceOf(InvalidToken);
      feed.entries.length = 0;
    }
  });

  it('when an entry is of a kind the guard does not know, it is skipped: the poll succeeds and the entries around it count', async () => {
    const guard = guardWith();
    feed.entries.push({ jti: 'before', expires_at: inAnHour() }, { subject: 'someone', expires_at: inAnHour() }, { client_id: 'no-moment', expires_at: inAnHour() }, { jti: 'after', expires_at: inAnHour() });
    await poll(guard);
    expect(guard.revocations?.size).toBe(2);
    for (const jti of ['before', 'after']) await expect(guard.verifier.verify(await accessToken(key, { jti }))).rejects.toBeInstanceOf(InvalidToken);
    await expect(guard.verifier.verify(await accessToken(key, { client_id: 'no-moment' }))).resolves.toMatchObject({ sub: 'user-1' });
  });

  it('when the feed has several pages, one poll reads them all, each asked with the previous cursor, and the next poll only what is new', async () => {
    const guard = guardWith();
    feed.pageSize = 2;
    for (let i = 0; i < 5; i += 1) feed.entries.push({ jti: `p-${i}`, expires_at: inAnHour() });
    await poll(guard);
    expect(guard.revocations?.size).toBe(5);
    feed.requests.length = 0;
    feed.entries.push({ jti: 'p-5', expires_at: inAnHour() });
    await poll(guard);
    expect(feed.requests.map((request) => request.since)).toEqual(['5']);
    await expect(guard.verifier.verify(await accessToken(key, { jti: 'p-5' }))).rejects.toBeInstanceOf(InvalidToken);
  });

  it('when the feed fails, the last list read keeps being used (stale-if-error) until staleIfErrorMs, then tokens are unverifiable (503) until it answers again', async () => {
    const guard = guardWith(60_000);
    feed.entries.push({ jti: 'revoked', expires_at: inAnHour() });
    await poll(guard);
    const live = await accessToken(key, { jti: 'live' });
    const revoked = await accessToken(key, { jti: 'revoked' });

    feed.failWith = 503;
    clock += 30_000;
    await poll(guard);
    await expect(guard.verifier.verify(live)).resolves.toMatchObject({ sub: 'user-1' });
    await expect(guard.verifier.verify(revoked)).rejects.toBeInstanceOf(InvalidToken);

    clock += 31_000;
    expect(guard.verifier.cached(live)).toBeUndefined();
    await expect(guard.verifier.verify(live)).rejects.toBeInstanceOf(VerifierUnavailable);

    feed.failWith = undefined;
    await expect(guard.verifier.verify(live)).resolves.toMatchObject({ sub: 'user-1' });
    await expect(guard.verifier.verify(revoked)).rejects.toBeInstanceOf(InvalidToken);
  });

  it('when the feed has never answered, a token is not accepted unchecked: 503 VerifierUnavailable', async () => {
    feed.failWith = 401;
    const guard = guardWith();
    await expect(guard.verifier.verify(await accessToken(key))).rejects.toBeInstanceOf(VerifierUnavailable);
  });

  it('when an entry has expired, it is dropped at the next poll', async () => {
    const guard = guardWith(3_600_000);
    const now = Math.floor(clock / 1000);
    feed.entries.push({ jti: 'soon', expires_at: now + 60 }, { client_id: 'gone', revoked_at: now - 86_340, expires_at: now + 60 });
    await poll(guard);
    expect(guard.revocations?.size).toBe(2);
    clock += 10 * 60_000;
    await poll(guard);
    expect(guard.revocations?.size).toBe(0);
  });
});
