import { PGlite } from '@electric-sql/pglite';
import { describe, expect, it } from '@jest/globals';
import knexModule from 'knex';
import pg from 'pg';

import { isDatabaseUnavailable, unavailability } from '../../src/storage/unavailable.js';
import { freePort } from '../support/issuer.js';

const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });

describe('isDatabaseUnavailable', () => {
  it('is true for what pg answers when nothing listens at the database address', async () => {
    // freePort: free a moment ago, so nothing listens on it
    const client = new pg.Client({ host: '127.0.0.1', port: await freePort(), user: 'postgres', connectionTimeoutMillis: 1000 });
    const refused = await client.connect().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toMatchObject({ message: expect.stringContaining('ECONNREFUSED') });
    expect(unavailability(refused)).toBe('ECONNREFUSED');
  });

  it('is true for a lost or timed-out connection, as pg words it and as knex passes it on (the statement in front)', () => {
    for (const message of ['Connection terminated unexpectedly', 'Connection terminated', 'Query read timeout', 'timeout expired', 'Client was closed and is not queryable']) {
      expect(isDatabaseUnavailable(new Error(message))).toBe(true);
      expect(isDatabaseUnavailable(new Error(`select * from "clients" where "id" = $1 - ${message}`))).toBe(true);
    }
    expect(isDatabaseUnavailable(new Error('Connection terminated due to connection timeout', { cause: new Error('timeout expired') }))).toBe(true);
  });

  it("is true for knex's timeout waiting for a pooled connection", () => {
    const timeout = new knexModule.KnexTimeoutError('Knex: Timeout acquiring a connection. The pool is probably full.');
    expect(unavailability(timeout)).toBe('timeout acquiring a connection');
  });

  it('is true for socket errors, on the error itself, its cause, or inside an AggregateError (a host with several addresses)', () => {
    for (const code of ['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']) {
      expect(isDatabaseUnavailable(withCode(`read ${code}`, code))).toBe(true);
    }
    expect(isDatabaseUnavailable(new AggregateError([withCode('connect ECONNREFUSED ::1:5432', 'ECONNREFUSED')], 'connect failed'))).toBe(true);
    expect(isDatabaseUnavailable(new Error('wrapped', { cause: withCode('read ECONNRESET', 'ECONNRESET') }))).toBe(true);
  });

  it('is true for the SQLSTATEs of a server that drops or refuses sessions, or cancelled a statement past its timeout', () => {
    for (const code of ['08000', '08001', '08003', '08006', '08P01', '57P01', '57P02', '57P03', '53300', '57014']) {
      expect(unavailability(withCode('server says no', code))).toBe(code);
    }
  });

  it('is false for request faults and Sigil faults: constraint violations, bad input, serialization failures, programming errors', () => {
    for (const code of ['23505', '22021', '22P05', '40001', '42P01', '42601']) expect(isDatabaseUnavailable(withCode('no', code))).toBe(false);
    expect(isDatabaseUnavailable(new TypeError("Cannot read properties of undefined (reading 'id')"))).toBe(false);
    expect(isDatabaseUnavailable(new Error('invalid byte sequence for encoding "UTF8": 0x00'))).toBe(false);
    expect(isDatabaseUnavailable(new Error('the connection terminated the request'))).toBe(false);
    for (const value of [undefined, null, 'ECONNRESET', 42]) expect(isDatabaseUnavailable(value)).toBe(false);
  });

  it('is false for the errors of the embedded database (PGlite), which runs in the process and cannot become unreachable', async () => {
    const pglite = new PGlite();
    try {
      const failed = await pglite.query('select * from nowhere').then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(failed).toMatchObject({ code: '42P01' });
      expect(isDatabaseUnavailable(failed)).toBe(false);
    } finally {
      await pglite.close();
    }
  });

  it('does not follow causes without end', () => {
    const looped: Error & { cause?: unknown } = new Error('outer');
    looped.cause = looped;
    expect(isDatabaseUnavailable(looped)).toBe(false);
  });
});
