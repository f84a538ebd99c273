import { createHash, randomBytes } from 'node:crypto';

import { beforeAll, describe, expect, it } from '@jest/globals';

import {
  reserveLoginAttempt,
  settleLoginAttempt,
  sweepLoginThrottle,
  THROTTLE_POLICY,
  throttleKeys,
  type AttemptReservation,
  type LoginAttempt,
} from '../../src/domain/login-throttle.js';
import { PasswordHasher, QUEUED_PER_SLOT } from '../../src/domain/passwords.js';
import { createUser } from '../../src/domain/users.js';
import { backends } from '../support/backends.js';
import { request, type RawResponse } from '../support/http.js';
import { issuerSuite, type TestIssuer } from '../support/issuer.js';
import { postForm, registerClient, type Credentials } from '../support/oauth.js';
import { storageSuite } from '../support/storage.js';

const { inFlight } = THROTTLE_POLICY;

describe.each(backends)('login throttle policy and reservations ($name)', (backend) => {
  const storage = storageSuite(backend);
  const t0 = new Date('2026-11-29T10:00:00Z');
  const at = (seconds: number) => new Date(t0.getTime() + seconds * 1000);
  const store = () => storage.stores.throttle;
  const row = (key: string) => storage.database.knex('login_throttle').where({ key }).first<{ failures: number; in_flight: number; addresses: string[] } | undefined>();

  /** Counts one failure for `attempt` whatever its locks say (what a settled wrong password does). */
  const countFailure = (attempt: LoginAttempt, now: Date) =>
    settleLoginAttempt(store(), { keys: throttleKeys(attempt), decision: 'allowed', retryAfterSeconds: 0, held: [] }, 'failure', { now });
  /** What a reservation for `attempt` decides now; the reservation is given back. */
  const probe = async (attempt: LoginAttempt, now: Date) => {
    const reservation = await reserveLoginAttempt(store(), attempt, now);
    await settleLoginAttempt(store(), reservation, 'released', { now });
    return reservation;
  };
  const decided = (reservation: AttemptReservation) => (reservation.decision === 'allowed' ? 0 : reservation.retryAfterSeconds);

  it('when one address fails for one account, locks from the 5th failure with doubling delays capped at 15 minutes', async () => {
    const attempt = { username: 'Bob', ip: '10.9.0.1' };
    const lockAfter: number[] = [];
    for (let i = 1; i <= 12; i += 1) {
      await countFailure(attempt, at(i));
      lockAfter.push(decided(await probe(attempt, at(i))));
    }
    expect(lockAfter).toEqual([0, 0, 0, 0, 30, 60, 120, 240, 480, 900, 900, 900]);
    // the username is matched case-insensitively; another address is not affected
    expect((await probe({ username: 'bob', ip: '10.9.0.1' }, at(12))).decision).toBe('locked');
    expect((await probe({ username: 'bob', ip: '10.9.0.2' }, at(12))).decision).toBe('allowed');
    // locks end by themselves: no address can lock a user out forever
    expect((await probe(attempt, at(12 + 901))).decision).toBe('allowed');
  });

  it('when one address fails 40 times, the account stays open elsewhere; it locks from the 20th distinct address', async () => {
    for (let i = 0; i < 40; i += 1) await countFailure({ username: 'carol', ip: '10.8.0.0' }, at(i));
    expect((await probe({ username: 'carol', ip: '10.7.7.7' }, at(40))).decision).toBe('allowed');
    expect((await row('account:carol'))?.addresses).toEqual(['10.8.0.0']);

    for (let i = 1; i < THROTTLE_POLICY.account.threshold - 1; i += 1) await countFailure({ username: 'carol', ip: `10.8.0.${i}` }, at(40 + i));
    expect((await probe({ username: 'carol', ip: '10.7.7.7' }, at(60))).decision).toBe('allowed');
    // the 20th address locks the account for a minute, for every address
    await countFailure({ username: 'CAROL', ip: '10.8.1.0' }, at(60));
    expect(await probe({ username: 'carol', ip: '10.7.7.7' }, at(61))).toMatchObject({ decision: 'locked', retryAfterSeconds: 60 - 1 });
    // a failure from an address already counted does not extend it
    const again = await countFailure({ username: 'carol', ip: '10.8.0.3' }, at(62));
    expect(again.locked).not.toContain('account');
    expect((await probe({ username: 'carol', ip: '10.7.7.7' }, at(121))).decision).toBe('allowed');
  });

  it('a success clears the account and its pair, not the address; the window restarts the count', async () => {
    const attempt = { username: 'dave', ip: '10.6.0.1' };
    for (let i = 0; i < 4; i += 1) await countFailure(attempt, at(i));
    await countFailure({ username: 'dave', ip: '10.6.0.2' }, at(4));
    const success = await reserveLoginAttempt(store(), attempt, at(5));
    expect(success.decision).toBe('allowed');
    await settleLoginAttempt(store(), success, 'success', { now: at(5) });
    expect(await row('pair:dave|10.6.0.1')).toMatchObject({ failures: 0, in_flight: 0 });
    expect(await row('account:dave')).toMatchObject({ failures: 0, addresses: [] });
    expect(await row('ip:10.6.0.1')).toMatchObject({ failures: 4, in_flight: 0 });

    for (let i = 0; i < 4; i += 1) await countFailure(attempt, at(10 + i));
    // the 5th comes after the window of the first four: it starts a new count
    await countFailure(attempt, at(10 + THROTTLE_POLICY.windowSeconds + 1));
    expect((await probe(attempt, at(10 + THROTTLE_POLICY.windowSeconds + 1))).decision).toBe('allowed');
  });

  it('a settlement and the attempt\'s audit event are one statement: both are written, or neither', async () => {
    const events = (username: string) => storage.database.knex('auth_events').where({ username }).orderBy('id').select<{ event: string; ip: string; client_id: string; user_id: string | null; detail: unknown }[]>('event', 'ip', 'client_id', 'user_id', 'detail');
    const attempt = { username: 'rita', ip: '10.40.0.1' };
    const audit = { username: 'rita', ip: attempt.ip, clientId: 'desk' };
    const statements: string[] = [];
    const watch = (query: { sql: string }) => statements.push(query.sql);
    await countFailure(attempt, at(0));
    const success = await reserveLoginAttempt(store(), attempt, at(1));
    storage.database.knex.on('query', watch);
    try {
      await settleLoginAttempt(store(), success, 'success', { now: at(1), recorded: { ...audit, event: 'login.success', userId: '0b7e1f62-7a55-4a54-9b5e-6a51c1a0d2f1' } });
    } finally {
      storage.database.knex.off('query', watch);
    }
    expect(statements).toHaveLength(1);
    expect(await row('pair:rita|10.40.0.1')).toMatchObject({ failures: 0, in_flight: 0 });
    expect(await events('rita')).toEqual([{ event: 'login.success', ip: '10.40.0.1', client_id: 'desk', user_id: '0b7e1f62-7a55-4a54-9b5e-6a51c1a0d2f1', detail: null }]);

    // a failure with an event the database refuses (a user id that is no uuid): nothing is counted either
    const failing = await reserveLoginAttempt(store(), attempt, at(2));
    await expect(settleLoginAttempt(store(), failing, 'failure', { now: at(2), recorded: { ...audit, event: 'login.failure', userId: 'not-a-uuid' } })).rejects.toThrow();
    expect(await row('pair:rita|10.40.0.1')).toMatchObject({ failures: 0, in_flight: 1 });
    await settleLoginAttempt(store(), failing, 'failure', { now: at(2), recorded: { ...audit, event: 'login.failure' } });
    expect(await row('pair:rita|10.40.0.1')).toMatchObject({ failures: 1, in_flight: 0 });

    // released with an event and no slot held: the event alone
    await settleLoginAttempt(store(), { keys: throttleKeys(attempt), decision: 'locked', retryAfterSeconds: 30, held: [] }, 'released', { recorded: { ...audit, event: 'login.throttled', detail: { reason: 'locked', retry_after: 30 } } });
    // released with its slots and an event with a detail: one statement, the slots back, the detail kept
    const held = await reserveLoginAttempt(store(), attempt, at(3));
    expect((await row('pair:rita|10.40.0.1'))?.in_flight).toBe(1);
    await settleLoginAttempt(store(), held, 'released', { now: at(3), recorded: { ...audit, event: 'login.throttled', detail: { reason: 'overloaded', retry_after: 1 } } });
    expect((await row('pair:rita|10.40.0.1'))?.in_flight).toBe(0);
    expect((await events('rita')).map((each) => [each.event, each.detail])).toEqual([
      ['login.success', null],
      ['login.failure', null],
      ['login.throttled', { reason: 'locked', retry_after: 30 }],
      ['login.throttled', { reason: 'overloaded', retry_after: 1 }],
    ]);
  });

  it('when many attempts race for one account and address, exactly the pair\'s in-flight limit get a slot (only they take an account or address slot), and N settled count as N', async () => {
    const attempt = { username: 'erin', ip: '10.5.0.1' };
    const reservations = await Promise.all(Array.from({ length: 100 }, () => reserveLoginAttempt(store(), attempt, at(0))));
    expect(inFlight.pair).toBeLessThan(THROTTLE_POLICY.pair.threshold);
    expect(reservations.filter((each) => each.decision === 'allowed')).toHaveLength(inFlight.pair);
    expect(reservations.filter((each) => each.decision === 'busy')).toHaveLength(100 - inFlight.pair);
    // a reservation its pair refused holds nothing: the account and the address hold the allowed ones only
    expect(reservations.filter((each) => each.decision === 'busy').every((each) => each.held.length === 0)).toBe(true);
    expect((await row('pair:erin|10.5.0.1'))?.in_flight).toBe(inFlight.pair);
    expect((await row('account:erin'))?.in_flight).toBe(inFlight.pair);
    expect((await row('ip:10.5.0.1'))?.in_flight).toBe(inFlight.pair);

    // every one of them settled as a failure, all at once: each is counted, every slot comes back
    await Promise.all(reservations.map((each) => settleLoginAttempt(store(), each, 'failure', { now: at(1) })));
    expect(await row('pair:erin|10.5.0.1')).toMatchObject({ failures: 100, in_flight: 0 });
    expect(await row('ip:10.5.0.1')).toMatchObject({ failures: 100, in_flight: 0 });
    expect(await row('account:erin')).toMatchObject({ failures: 1, addresses: ['10.5.0.1'], in_flight: 0 });
    expect((await probe(attempt, at(2))).decision).toBe('locked');
  });

  it('when one address floods one account, the account keeps its slots for other addresses; a lock refuses without taking the wider keys\' slots', async () => {
    const flooding = await Promise.all(Array.from({ length: 50 }, () => reserveLoginAttempt(store(), { username: 'ivy', ip: '10.1.0.1' }, at(0))));
    expect(flooding.filter((each) => each.decision === 'allowed')).toHaveLength(inFlight.pair);
    // while those are in flight, every other address is let in up to the account's own limit
    const others = await Promise.all(Array.from({ length: inFlight.account - inFlight.pair }, (_, i) => reserveLoginAttempt(store(), { username: 'ivy', ip: `10.1.1.${i}` }, at(0))));
    expect(others.map((each) => each.decision)).toEqual(others.map(() => 'allowed'));
    await Promise.all([...flooding, ...others].map((each) => settleLoginAttempt(store(), each, 'released', { now: at(0) })));
    expect(await row('account:ivy')).toMatchObject({ failures: 0, in_flight: 0 });

    // a locked pair: refused, and neither the address nor the account takes a slot for it
    for (let i = 0; i < THROTTLE_POLICY.pair.threshold; i += 1) await countFailure({ username: 'ivy', ip: '10.1.0.1' }, at(1));
    const locked = await reserveLoginAttempt(store(), { username: 'ivy', ip: '10.1.0.1' }, at(2));
    expect(locked).toMatchObject({ decision: 'locked', held: [] });
    expect(await row('account:ivy')).toMatchObject({ in_flight: 0 });
    expect(await row('ip:10.1.0.1')).toMatchObject({ in_flight: 0 });
  });

  it('at most the address limit are in flight from one address across accounts', async () => {
    const reservations = await Promise.all(Array.from({ length: inFlight.ip + 8 }, (_, i) => reserveLoginAttempt(store(), { username: `user-${i}`, ip: '10.4.0.1' }, at(0))));
    expect(reservations.filter((each) => each.decision === 'allowed')).toHaveLength(inFlight.ip);
    await Promise.all(reservations.map((each) => settleLoginAttempt(store(), each, 'released', { now: at(0) })));
    expect(await row('ip:10.4.0.1')).toMatchObject({ failures: 0, in_flight: 0 });
  });

  it('when reservations are never settled (a crashed process), they stop counting after the in-flight expiry', async () => {
    const attempt = { username: 'frank', ip: '10.3.0.1' };
    for (let i = 0; i < inFlight.pair; i += 1) expect((await reserveLoginAttempt(store(), attempt, at(0))).decision).toBe('allowed');
    expect(await probe(attempt, at(1))).toMatchObject({ decision: 'busy', retryAfterSeconds: THROTTLE_POLICY.busyRetryAfterSeconds });
    expect((await probe(attempt, at(inFlight.expirySeconds + 1))).decision).toBe('allowed');
  });

  it('an attempt with a huge username or address is reserved and counted like any other (its key keeps their start)', async () => {
    const huge = { username: randomBytes(6000).toString('base64'), ip: randomBytes(6000).toString('hex') };
    await countFailure(huge, at(0));
    expect((await probe(huge, at(1))).decision).toBe('allowed');
    expect((await row(throttleKeys(huge).pair))?.failures).toBe(1);
  });

  it('the sweeper removes counters idle for the window, and keeps the others', async () => {
    const sweptAt = at(10_000);
    await countFailure({ username: 'gina', ip: '10.2.0.1' }, sweptAt);
    await countFailure({ username: 'hank', ip: '10.2.0.2' }, at(10_100));
    await sweepLoginThrottle(store(), new Date(sweptAt.getTime() + (THROTTLE_POLICY.windowSeconds + 50) * 1000));
    expect(await row('pair:gina|10.2.0.1')).toBeUndefined();
    expect(await row('account:gina')).toBeUndefined();
    expect(await row('ip:10.2.0.1')).toBeUndefined();
    expect(await row('pair:hank|10.2.0.2')).toBeDefined();
  });
});

const PASSWORD = 'correct horse battery staple';
const ORDERS = 'http://localhost:4001';
const CALLBACK = 'http://127.0.0.1:9/callback';

/** What the issuer recorded for sign-ins from `ip`, by event and throttling reason. */
async function auditOf(issuer: TestIssuer, where: Record<string, string>): Promise<Record<string, number>> {
  const rows = await issuer.db('auth_events').where(where).select<{ event: string; detail: { reason?: string } | null }[]>('event', 'detail');
  const tally: Record<string, number> = {};
  for (const { event, detail } of rows) {
    const name = detail?.reason === undefined ? event : `${event}:${detail.reason}`;
    tally[name] = (tally[name] ?? 0) + 1;
  }
  return tally;
}

const count = (statuses: readonly number[], status: number) => statuses.filter((each) => each === status).length;

/**
 * The most attempts each throttle key had in flight at once while `during` ran: a trigger on
 * `login_throttle` keeps the high-water mark of every key's `in_flight` (what every reservation
 * writes, one statement each), so no timing is guessed. The trigger is removed afterwards.
 */
async function inFlightHighWater(issuer: TestIssuer, during: () => Promise<void>): Promise<Map<string, number>> {
  const { db } = issuer;
  await db.raw('CREATE TABLE test_in_flight_high_water (key text PRIMARY KEY, in_flight integer NOT NULL)');
  await db.raw(`CREATE FUNCTION test_note_in_flight() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO test_in_flight_high_water AS h (key, in_flight) VALUES (NEW.key, NEW.in_flight)
      ON CONFLICT (key) DO UPDATE SET in_flight = GREATEST(h.in_flight, EXCLUDED.in_flight);
      RETURN NEW;
    END $$`);
  await db.raw('CREATE TRIGGER test_note_in_flight AFTER INSERT OR UPDATE ON login_throttle FOR EACH ROW EXECUTE FUNCTION test_note_in_flight()');
  try {
    await during();
    const rows = await db('test_in_flight_high_water').select<{ key: string; in_flight: number }[]>('key', 'in_flight');
    return new Map(rows.map((row) => [row.key, row.in_flight]));
  } finally {
    await db.raw('DROP TRIGGER test_note_in_flight ON login_throttle');
    await db.raw('DROP FUNCTION test_note_in_flight()');
    await db.raw('DROP TABLE test_in_flight_high_water');
  }
}

/** A login page reached over plain HTTP: its interaction's cookies and CSRF token, and a way to post the form. */
async function openLoginPage(issuer: TestIssuer, clientId: string) {
  const verifier = randomBytes(32).toString('base64url');
  const query = new URLSearchParams({
    client_id: clientId,
    response_type: 'code',
    redirect_uri: CALLBACK,
    scope: 'openid',
    state: randomBytes(8).toString('hex'),
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  });
  const started = await request(`${issuer.url}/auth?${query}`);
  const location = String(started.headers.location ?? '');
  const cookie = (started.headers['set-cookie'] ?? []).map((each) => each.split(';')[0]).join('; ');
  const page = await request(`${issuer.url}${location}`, { headers: { cookie } });
  const csrf = /name="csrf" value="([^"]+)"/u.exec(page.body)?.[1] ?? '';
  expect(page.status).toBe(200);
  return (username: string, password: string, ip: string): Promise<RawResponse> =>
    request(`${issuer.url}${location}/login`, {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': ip },
      body: new URLSearchParams({ csrf, username, password }).toString(),
    });
}

describe.each(backends)('sign-in races over HTTP ($name)', (backend) => {
  // TRUST_PROXY=1: each attempt names its address; argon2id slower than the default, so that a
  // burst is surely all in flight before the first verification ends; one worker's hasher
  const suite = issuerSuite(backend, { TRUST_PROXY: '1', ARGON2_TIME_COST: '20', WEB_CONCURRENCY: '1' });
  let app: Credentials;
  let web: Credentials;

  const token = (username: string, password: string, ip: string) =>
    postForm(suite.issuer.url, { grant_type: 'password', username, password }, app, { headers: { 'x-forwarded-for': ip } });
  const burst = (size: number, send: (i: number) => Promise<{ status: number }>) => Promise.all(Array.from({ length: size }, (_, i) => send(i).then((response) => response.status)));

  beforeAll(async () => {
    const { stores, config } = suite.issuer;
    app = await registerClient(stores.clients, { name: 'mobile', grants: ['password'], scopes: ['orders:read'], resources: [ORDERS] });
    web = await registerClient(stores.clients, { name: 'desk', grants: ['authorization_code'], scopes: ['openid'], redirectUris: [CALLBACK], resources: [ORDERS], firstParty: true });
    const hasher = new PasswordHasher(config.argon2);
    for (const username of ['alice', 'bob', 'carol', 'dave', 'erin']) await createUser(stores.users, { username, password: PASSWORD }, hasher);
  });

  it('when 40 wrong passwords for one account arrive at once from one address, the right one from another address is accepted', async () => {
    const statuses = await burst(40, (i) => token('alice', `wrong-guess-${i}`, '203.0.113.10'));
    expect(count(statuses, 400) + count(statuses, 429)).toBe(40);
    expect(count(statuses, 429)).toBeGreaterThan(0);
    const elsewhere = await token('alice', PASSWORD, '198.51.100.10');
    expect(elsewhere.status).toBe(200);
  });

  it('when 24 guesses for one account arrive at once from one address, at most the pair\'s in-flight limit reach password verification at once, and the refused ones count nothing', async () => {
    const size = 24;
    let statuses: number[] = [];
    const highWater = await inFlightHighWater(suite.issuer, async () => {
      statuses = await burst(size, (i) => token('erin', `wrong-guess-${i}`, '203.0.113.50'));
    });
    // an attempt reaches argon2id only holding a slot of each key, until it is settled: at most the pair's limit at once
    expect(highWater.get('pair:erin|203.0.113.50')).toBe(inFlight.pair);
    expect(highWater.get('account:erin')).toBe(inFlight.pair);
    expect(highWater.get('ip:203.0.113.50')).toBe(inFlight.pair);
    const audit = await auditOf(suite.issuer, { ip: '203.0.113.50' });
    // login.failure: the guesses that reached argon2id (each one recorded once, the refused ones as in_flight)
    expect(audit['login.failure']).toBe(count(statuses, 400));
    expect(audit['login.failure']).toBeGreaterThanOrEqual(inFlight.pair);
    // the others were refused before any password work: as busy, or (once the verified ones reached the threshold, which a slow machine allows) as locked
    const refused = (audit['login.throttled:in_flight'] ?? 0) + (audit['login.throttled:locked'] ?? 0);
    expect(audit['login.throttled:in_flight']).toBeGreaterThan(0);
    expect(refused).toBe(size - (audit['login.failure'] ?? 0));
    expect(count(statuses, 429)).toBe(refused);
    // counted: the verified guesses only, under every key
    const counted = await suite.issuer.db('login_throttle').whereIn('key', ['pair:erin|203.0.113.50', 'ip:203.0.113.50']).select<{ key: string; failures: number; in_flight: number }[]>('key', 'failures', 'in_flight');
    expect(counted.map(({ failures, in_flight }) => ({ failures, in_flight }))).toEqual(counted.map(() => ({ failures: audit['login.failure'], in_flight: 0 })));
    // the refused ones did not lock the user at that address out: unless the verified ones alone reached the threshold
    const verified = audit['login.failure'] ?? 0;
    expect((await token('erin', PASSWORD, '203.0.113.50')).status).toBe(verified < THROTTLE_POLICY.pair.threshold ? 200 : 429);
  });

  it('when 60 wrong passwords for one account arrive at once from one address, every one is recorded, few are verified, and the address locks after 5 verified failures, the right password included', async () => {
    const statuses = await burst(60, (i) => token('bob', `wrong-guess-${i}`, '203.0.113.20'));
    const audit = await auditOf(suite.issuer, { ip: '203.0.113.20' });
    // every guess was recorded once; at most the pair's in-flight limit reached argon2id at once
    expect((audit['login.failure'] ?? 0) + (audit['login.throttled:in_flight'] ?? 0) + (audit['login.throttled:locked'] ?? 0)).toBe(60);
    expect(audit['login.failure']).toBe(count(statuses, 400));
    expect(audit['login.throttled:in_flight']).toBeGreaterThan(0);
    // counted: the verified guesses, not the refused ones
    const pair = await suite.issuer.db('login_throttle').where({ key: 'pair:bob|203.0.113.20' }).first<{ failures: number }>();
    expect(pair.failures).toBe(audit['login.failure']);

    // one by one, the address gets exactly the rest of the pair's threshold, then is locked
    const oneByOne: number[] = [];
    for (let i = 0; i < THROTTLE_POLICY.pair.threshold; i += 1) oneByOne.push((await token('bob', `slow-guess-${i}`, '203.0.113.20')).status);
    expect(oneByOne.filter((status) => status === 400)).toHaveLength(Math.max(0, THROTTLE_POLICY.pair.threshold - (audit['login.failure'] ?? 0)));
    expect(oneByOne.at(-1)).toBe(429);
    const right = await token('bob', PASSWORD, '203.0.113.20');
    expect(right.status).toBe(429);
    expect(Number(right.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await right.json()).toEqual({ error: 'invalid_grant', error_description: 'too many failed sign-in attempts; retry later' });
  });

  it('the login page: a burst of wrong passwords from one address is verified a few at a time; once the address locks, the right password is refused there and works from another address', async () => {
    const post = await openLoginPage(suite.issuer, web.id);
    const statuses = await burst(40, (i) => post('carol', `wrong-guess-${i}`, '203.0.113.30'));
    expect(count(statuses, 401) + count(statuses, 429)).toBe(40);
    const audit = await auditOf(suite.issuer, { ip: '203.0.113.30' });
    expect(audit['login.failure']).toBe(count(statuses, 401));
    for (let i = 0; i < THROTTLE_POLICY.pair.threshold; i += 1) await post('carol', `slow-guess-${i}`, '203.0.113.30');

    const refused = await post('carol', PASSWORD, '203.0.113.30');
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBeDefined();
    expect(refused.body).toContain('Too many failed attempts.');
    const accepted = await post('carol', PASSWORD, '198.51.100.30');
    expect(accepted.status).toBe(303);
  });

  it('when more attempts for one account are in flight than the limit, the excess is refused at once without password work', async () => {
    // one address each, fewer than the account's lock threshold: only the in-flight limit applies
    const size = THROTTLE_POLICY.account.threshold - 1;
    const responses = await Promise.all(Array.from({ length: size }, (_, i) => token('dave', `wrong-guess-${i}`, `192.0.2.${i + 1}`)));
    const statuses = responses.map((response) => response.status);
    const audit = await auditOf(suite.issuer, { username: 'dave' });
    expect(audit['login.failure']).toBe(count(statuses, 400));
    expect(audit['login.failure']).toBeLessThanOrEqual(inFlight.account);
    expect(audit['login.throttled:in_flight']).toBe(count(statuses, 429));
    expect(audit['login.throttled:in_flight']).toBeGreaterThanOrEqual(size - inFlight.account);
    for (const response of responses.filter((each) => each.status === 429)) {
      expect(response.headers.get('retry-after')).toBe(String(THROTTLE_POLICY.busyRetryAfterSeconds));
    }
    // the account opens again as they settle
    expect((await token('dave', PASSWORD, '198.51.100.40')).status).toBe(200);
  });
});

/** More sign-ins at once than one computation slot and its queue admit. */
const BURST = QUEUED_PER_SLOT + 20;

describe.each(backends)('an overloaded password hasher over HTTP ($name)', (backend) => {
  // one argon2id computation at a time (one worker, two libuv threads): 1 running + QUEUED_PER_SLOT waiting at most
  const suite = issuerSuite(backend, { TRUST_PROXY: '1', ARGON2_TIME_COST: '10', WEB_CONCURRENCY: '1', UV_THREADPOOL_SIZE: '2' });
  let app: Credentials;
  let web: Credentials;

  beforeAll(async () => {
    const { stores } = suite.issuer;
    app = await registerClient(stores.clients, { name: 'mobile', grants: ['password'], scopes: ['orders:read'], resources: [ORDERS] });
    web = await registerClient(stores.clients, { name: 'desk', grants: ['authorization_code'], scopes: ['openid'], redirectUris: [CALLBACK], resources: [ORDERS], firstParty: true });
  });

  it('the password grant answers the excess 503 temporarily_unavailable with Retry-After, before any password work', async () => {
    // distinct users and addresses: no throttle applies, only the hasher's bound
    const responses = await Promise.all(
      Array.from({ length: BURST }, (_, i) => postForm(suite.issuer.url, { grant_type: 'password', username: `nobody-${i}`, password: 'wrong-password' }, app, { headers: { 'x-forwarded-for': `192.0.2.${100 + i}` } })),
    );
    const unavailable = responses.filter((response) => response.status === 503);
    expect(unavailable.length).toBeGreaterThan(0);
    expect(unavailable.length + responses.filter((response) => response.status === 400).length).toBe(BURST);
    expect(unavailable[0]?.headers.get('retry-after')).toBe('1');
    expect(await unavailable[0]?.json()).toEqual({ error: 'temporarily_unavailable', error_description: 'too many sign-ins at once; retry later' });
    const audit = await auditOf(suite.issuer, { client_id: app.id });
    expect(audit['login.throttled:overloaded']).toBe(unavailable.length);
    // nothing was counted against the users refused for overload
    const counted = await suite.issuer.db('login_throttle').where('key', 'like', 'pair:nobody-%').andWhere('failures', '>', 0).count<{ count: string }[]>('* as count');
    expect(Number(counted[0]?.count)).toBe(BURST - unavailable.length);
  });

  it('the login page answers the excess with a 503 page and Retry-After', async () => {
    const post = await openLoginPage(suite.issuer, web.id);
    const responses = await Promise.all(Array.from({ length: BURST }, (_, i) => post(`nobody-page-${i}`, 'wrong-password', `198.51.100.${100 + i}`)));
    const unavailable = responses.filter((response) => response.status === 503);
    expect(unavailable.length).toBeGreaterThan(0);
    expect(unavailable.length + responses.filter((response) => response.status === 401).length).toBe(BURST);
    expect(unavailable[0]?.headers['retry-after']).toBe('1');
    expect(unavailable[0]?.body).toContain('Too many sign-ins at once.');
  });
});
