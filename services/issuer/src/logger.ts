import { pino, stdSerializers, type Logger as PinoLogger } from 'pino';

import type { LogLevel } from './config.js';

export type Logger = PinoLogger;

/**
 * Members of a database error that carry the values a statement was given (PGlite attaches the
 * query, its parameters and options; knex its bindings): a token, a code or a session id among
 * them would reach the log.
 */
const STATEMENT_VALUES: ReadonlySet<string> = new Set(['params', 'parameters', 'bindings', 'query', 'queryOptions', 'sql']);

/** pino's error serializer, without the values of a failed statement (at any depth of `cause`). */
function serializeError(error: Error): ReturnType<typeof stdSerializers.err> {
  const strip = (value: unknown, depth: number): unknown => {
    if (typeof value !== 'object' || value === null || depth > 5) return value;
    const kept = Object.entries(value).filter(([member]) => !STATEMENT_VALUES.has(member));
    return Object.fromEntries(kept.map(([member, inner]) => [member, member === 'cause' ? strip(inner, depth + 1) : inner]));
  };
  return strip(stdSerializers.err(error), 0) as ReturnType<typeof stdSerializers.err>;
}

/** JSON logs on stdout. Secrets, tokens and passwords are never logged (docs/security.md#secrets-at-rest, K4). */
export function createLogger(level: LogLevel, destination?: pino.DestinationStream): Logger {
  const options = {
    level,
    base: { service: 'sigil-issuer' },
    serializers: { err: serializeError },
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', '*.client_secret', '*.password', '*.key'],
      remove: true,
    },
  };
  return destination === undefined ? pino(options) : pino(options, destination);
}
