import { format } from 'node:util';

import { pino, type Logger as PinoLogger } from 'pino';

import type { LogLevel } from './config.js';

export type Logger = PinoLogger;

/**
 * Members of a database error that carry the values a statement was given (PGlite attaches the
 * query, its parameters and options; knex its bindings; PostgreSQL quotes the offending value in
 * `detail` and `where`): a token, a code or a session id among them would reach the log.
 */
const STATEMENT_VALUES: ReadonlySet<string> = new Set(['params', 'parameters', 'bindings', 'query', 'queryOptions', 'sql', 'detail', 'where', 'hint', 'internalQuery']);

type SerializedError = Record<string, unknown>;

/** A PostgreSQL (or PGlite) error: SQLSTATE `code` and a `severity`. Its message may quote a value. */
function isDatabaseError(error: Error): error is Error & { code: string; severity: string } {
  const { code, severity } = error as { code?: unknown; severity?: unknown };
  return typeof severity === 'string' && typeof code === 'string' && /^[0-9A-Z]{5}$/u.test(code);
}

/**
 * Errors as JSON: type, message, stack, the error's own members and its `cause`, never the
 * values of a failed statement. A database error keeps its SQLSTATE and where in PostgreSQL it
 * arose, but not its message (`invalid input syntax for type uuid: "…"` quotes the input).
 */
function serializeError(error: unknown, depth = 0): unknown {
  if (!(error instanceof Error) || depth > 5) return error;
  const serialized: SerializedError = { type: error.constructor.name };
  for (const [member, value] of Object.entries(error)) {
    if (!STATEMENT_VALUES.has(member)) serialized[member] = value;
  }
  if (isDatabaseError(error)) {
    serialized['message'] = `database error ${error.code} (${error.severity})`;
    serialized['stack'] = error.stack?.split('\n').slice(1).join('\n');
  } else {
    serialized['message'] = error.message;
    serialized['stack'] = error.stack;
  }
  if (error.cause !== undefined) serialized['cause'] = serializeError(error.cause, depth + 1);
  return serialized;
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

/**
 * Sends what libraries print with `console` (oidc-provider's notices and warnings, printed as
 * plain text, some at import) to `logger` as JSON lines, so the issuer's output stays one JSON
 * object per line. Call before importing them.
 */
export function routeConsoleTo(logger: Logger): void {
  const line = (level: 'debug' | 'info' | 'warn' | 'error') => (...args: unknown[]) => logger[level]({ component: 'console' }, format(...args));
  Object.assign(console, { debug: line('debug'), log: line('info'), info: line('info'), warn: line('warn'), error: line('error') });
}
