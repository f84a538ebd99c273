import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { PGlite } from '@electric-sql/pglite';
import { pino } from 'pino';

import { createLogger } from '../../src/logger.js';

const SECRET = 'rt-Zq3vX9sKp2LmN8wYt4BcD6fGh1JkE5uA0oIr7';

/** A logger writing its lines into `lines`. */
const capture = () => {
  const lines: string[] = [];
  return { lines, destination: { write: (line: string) => void lines.push(line) } };
};

describe('the issuer logger', () => {
  let pglite: PGlite;
  let failure: unknown;

  beforeAll(async () => {
    // a real failed statement: PGlite attaches the query and its parameters to the error
    pglite = new PGlite();
    failure = await pglite.query('SELECT $1::int', [SECRET]).then(
      () => undefined,
      (error: unknown) => error,
    );
  });

  afterAll(async () => {
    await pglite.close();
  });

  it('when PGlite fails a statement, its error carries the statement parameters (so the test below can fail)', () => {
    expect(failure).toBeInstanceOf(Error);
    const plain = capture();
    pino({ level: 'info' }, plain.destination).error({ err: failure }, 'query failed');
    expect(plain.lines.join('')).toContain(SECRET);
  });

  it('when an error of a failed statement is logged, the line keeps the message and stack but not the parameters or the query (K4)', () => {
    const { lines, destination } = capture();
    createLogger('info', destination).error({ err: failure }, 'query failed');
    expect(lines).toHaveLength(1);
    const line = lines[0] ?? '';
    expect(line).not.toContain(SECRET);
    const err = (JSON.parse(line) as { err: Record<string, unknown> }).err;
    expect(err['message']).toEqual(expect.any(String));
    expect(err['stack']).toEqual(expect.any(String));
    expect(err).not.toHaveProperty('params');
    expect(err).not.toHaveProperty('query');
  });

  it('when such an error is the cause of another, the cause is stripped too', () => {
    const { lines, destination } = capture();
    createLogger('info', destination).error({ err: new Error('request failed', { cause: failure }) }, 'request failed');
    expect(lines.join('')).not.toContain(SECRET);
  });
});
