/**
 * Whether a failure means "the database cannot be reached right now" (an outage, answered 503
 * with Retry-After) rather than a fault in the request or in Sigil (answered as such). Storage
 * knows its driver's errors, so the one classification lives here.
 */

/** Socket errors of a connection that cannot be made or was lost (node:net, DNS). */
const NETWORK_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * SQLSTATEs of a server that refuses or drops the session, or that cancelled a statement
 * past its `statement_timeout` (57014): admin_shutdown, crash_shutdown, cannot_connect_now
 * (starting up, recovering), too_many_connections. Class 08 (connection exception) is matched
 * as a whole.
 */
const UNAVAILABLE_STATES: ReadonlySet<string> = new Set(['57014', '57P01', '57P02', '57P03', '53300']);

/**
 * What `pg` says when a connection ends, times out or was closed under a query (its errors
 * carry no code): a lost or closed connection, the connect timeout, the read timeout. knex
 * puts the statement in front (`<sql> - <message>`).
 */
const DRIVER_MESSAGES: readonly string[] = [
  'Connection terminated unexpectedly',
  'Connection terminated due to connection timeout',
  'Connection terminated',
  'Client was closed and is not queryable',
  'Client has encountered a connection error and is not queryable',
  'Query read timeout',
  'timeout expired',
];

/** knex gave up waiting for a pooled connection (every one busy or none could be made). */
const KNEX_TIMEOUT = 'KnexTimeoutError';

interface ErrorFields {
  readonly name?: unknown;
  readonly code?: unknown;
  readonly message?: unknown;
  readonly cause?: unknown;
  readonly errors?: unknown;
}

/** The reason `fields` itself names, if it is an outage: a code, the driver's words, or the pool's timeout. */
function ownReason(fields: ErrorFields): string | undefined {
  if (fields.name === KNEX_TIMEOUT) return 'timeout acquiring a connection';
  const { code, message } = fields;
  if (typeof code === 'string' && (NETWORK_CODES.has(code) || UNAVAILABLE_STATES.has(code) || /^08[0-9A-Z]{3}$/u.test(code))) return code;
  if (typeof message !== 'string') return undefined;
  return DRIVER_MESSAGES.find((known) => message === known || message.endsWith(` - ${known}`));
}

/**
 * Why `error` (or what it wraps: `cause`, an AggregateError's `errors`, as node gives for a
 * host with several addresses) says the database is unreachable, overloaded or too slow: a
 * short fixed reason (a code or the driver's own words, never a statement or a value), or
 * undefined when it is some other failure.
 */
export function unavailability(error: unknown, depth = 0): string | undefined {
  if (typeof error !== 'object' || error === null || depth > 4) return undefined;
  const fields = error as ErrorFields;
  const own = ownReason(fields);
  if (own !== undefined) return own;
  const inner = Array.isArray(fields.errors) ? fields.errors.map((wrapped: unknown) => unavailability(wrapped, depth + 1)).find((reason) => reason !== undefined) : undefined;
  return inner ?? (fields.cause === undefined ? undefined : unavailability(fields.cause, depth + 1));
}

/**
 * True when `error` means the database cannot serve now (see {@link unavailability}).
 *
 * @example
 * isDatabaseUnavailable(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })) // true
 * isDatabaseUnavailable(Object.assign(new Error('duplicate key'), { code: '23505' })) // false
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  return unavailability(error) !== undefined;
}

/**
 * True when `error` is PostgreSQL's refusal of a value (SQLSTATE class 22, data exception: a
 * number out of range, an invalid datetime…): the caller's input, which no schema caught, not a
 * failure of the database.
 *
 * @example
 * isDataException(Object.assign(new Error('value out of range'), { code: '22003' })) // true
 */
export function isDataException(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^22[0-9A-Z]{3}$/u.test(code);
}
