import type { IncomingHttpHeaders } from 'node:http';

/**
 * The input gate: every parameter a request carries (path, query, form body, Basic
 * credentials, the cookies the engine looks up) is checked on its raw bytes before anything
 * reaches the engine or the database. Node's querystring and the engine's body parser replace
 * invalid UTF-8 with U+FFFD, so the percent-escapes are decoded and validated here, in one
 * linear scan. A value is refused when it is not UTF-8, carries a control character (C0,
 * DEL or C1, TAB, CR and LF included: no OAuth parameter, and no password Sigil accepts at
 * a sign-in, needs one), is too long, or is repeated (only `resource` may be, RFC 8707 §2).
 * Each function answers `undefined` for acceptable input, or a description of the refusal.
 */

/** The longest value of most parameters, in decoded bytes. */
export const VALUE_LIMIT = 4096;
/** The longest value of a parameter that carries a JWT or a token of unknown format. */
export const LARGE_VALUE_LIMIT = 48 * 1024;
/** The largest request body: the engine's own limit (`lib/shared/selective_body.js`). */
export const BODY_LIMIT = 56 * 1024;
/** The longest parameter name, in decoded bytes. */
export const NAME_LIMIT = 128;
/** The most parameters one query or body may carry. */
export const PARAMETER_LIMIT = 100;

const LARGE_VALUES: ReadonlySet<string> = new Set([
  'request',
  'client_assertion',
  'subject_token',
  'actor_token',
  'assertion',
  'id_token_hint',
  'token',
  'access_token',
]);

/** RFC 8707 §2: the one parameter a request may repeat. */
const REPEATABLE: ReadonlySet<string> = new Set(['resource']);

/** The engine's cookies whose values it looks up (`cookies.names` in oidc-provider's defaults), with their `.sig` and `.legacy` companions. */
const LOOKED_UP_COOKIE = /^_(?:session|interaction|interaction_resume)(?:\.legacy)?(?:\.sig)?$/u;
const COOKIE_VALUE_LIMIT = 512;

const FORM = 'application/x-www-form-urlencoded';

/**
 * Validates UTF-8 one byte at a time (RFC 3629 §4: no overlong forms, no surrogates, nothing
 * above U+10FFFF) and refuses control characters: C0 and DEL as single bytes, C1 as C2 80–9F.
 */
class Utf8Text {
  private pending = 0;
  private lower = 0x80;
  private upper = 0xbf;
  failure: string | undefined;

  push(byte: number): boolean {
    if (this.pending > 0) {
      if (byte < this.lower || byte > this.upper) return this.fail('is not valid UTF-8');
      this.pending -= 1;
      this.lower = 0x80;
      this.upper = 0xbf;
      return true;
    }
    if (byte < 0x80) return byte < 0x20 || byte === 0x7f ? this.fail('contains a control character') : true;
    if (byte < 0xc2 || byte > 0xf4) return this.fail('is not valid UTF-8');
    this.pending = byte < 0xe0 ? 1 : byte < 0xf0 ? 2 : 3;
    if (byte === 0xe0) this.lower = 0xa0;
    else if (byte === 0xed) this.upper = 0x9f;
    else if (byte === 0xf0) this.lower = 0x90;
    else if (byte === 0xf4) this.upper = 0x8f;
    return true;
  }

  /** C1 controls: a C2 lead followed by 80–9F. */
  c1(lead: number, byte: number): boolean {
    return lead === 0xc2 && byte < 0xa0;
  }

  end(): boolean {
    return this.pending === 0 ? true : this.fail('is not valid UTF-8');
  }

  private fail(reason: string): false {
    this.failure = reason;
    return false;
  }
}

const HEX = new Int8Array(256).fill(-1);
for (let i = 0; i < 10; i += 1) HEX[0x30 + i] = i;
for (let i = 0; i < 6; i += 1) {
  HEX[0x41 + i] = 10 + i;
  HEX[0x61 + i] = 10 + i;
}

/** A name safe to quote in an error description, or a neutral stand-in. */
function quoted(name: string): string {
  return /^[A-Za-z0-9_.-]{1,64}$/u.test(name) ? `the parameter "${name}"` : 'a parameter';
}

/**
 * Checks one percent-encoded component `bytes[start, end)`: escapes well formed, the decoded
 * bytes UTF-8 without control characters, at most `limit` of them. With `plus`, `+` is a space
 * (form encoding). Plain printable ASCII, the common case, takes one tight loop.
 */
function component(bytes: Uint8Array, start: number, end: number, limit: number, plus: boolean): string | undefined {
  let i = start;
  while (i < end) {
    const byte = bytes[i] ?? 0;
    if (byte < 0x20 || byte > 0x7e || byte === 0x25) break;
    i += 1;
  }
  if (i === end) return end - start > limit ? 'is too long' : undefined;
  return decodedComponent(bytes, start, end, limit, plus);
}

/** `component`'s full check, decoding every escape. */
function decodedComponent(bytes: Uint8Array, start: number, end: number, limit: number, plus: boolean): string | undefined {
  const text = new Utf8Text();
  let length = 0;
  let previous = 0;
  for (let i = start; i < end; i += 1) {
    let byte = bytes[i] ?? 0;
    if (byte === 0x25) {
      const high = HEX[bytes[i + 1] ?? 0] ?? -1;
      const low = HEX[bytes[i + 2] ?? 0] ?? -1;
      if (i + 2 >= end || high < 0 || low < 0) return 'has a malformed percent-escape';
      byte = high * 16 + low;
      i += 2;
    } else if (byte === 0x2b && plus) {
      byte = 0x20;
    }
    if (!text.push(byte)) return text.failure;
    if (text.c1(previous, byte)) return 'contains a control character';
    previous = byte;
    length += 1;
    if (length > limit) return 'is too long';
  }
  return text.end() ? undefined : text.failure;
}

/** The decoded text of a component `component` accepted. */
function decoded(bytes: Uint8Array, start: number, end: number): string {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString('utf8');
  return text.includes('%') || text.includes('+') ? decodeURIComponent(text.replace(/\+/gu, ' ')) : text;
}

/**
 * Checks `application/x-www-form-urlencoded` data (a query string or a form body, WHATWG URL
 * §5.1): every name and value, how many there are, and that none but `resource` repeats.
 *
 * @example
 * ```ts
 * inspectForm(Buffer.from('grant_type=client_credentials&scope=a%00')); // 'the parameter "scope" contains a control character'
 * ```
 */
export function inspectForm(bytes: Uint8Array): string | undefined {
  const seen = new Set<string>();
  let count = 0;
  let start = 0;
  while (start <= bytes.length) {
    let end = bytes.indexOf(0x26, start);
    if (end === -1) end = bytes.length;
    if (end > start) {
      count += 1;
      if (count > PARAMETER_LIMIT) return 'the request carries too many parameters';
      const refusal = parameter(bytes, start, end, seen);
      if (refusal !== undefined) return refusal;
    }
    start = end + 1;
  }
  return undefined;
}

function parameter(bytes: Uint8Array, start: number, end: number, seen: Set<string>): string | undefined {
  let equals = bytes.indexOf(0x3d, start);
  if (equals === -1 || equals > end) equals = end;
  const nameRefusal = component(bytes, start, equals, NAME_LIMIT, true);
  if (nameRefusal !== undefined) return `a parameter name ${nameRefusal}`;
  const name = decoded(bytes, start, equals);
  if (seen.has(name) && !REPEATABLE.has(name)) return `${quoted(name)} is repeated`;
  seen.add(name);
  const limit = LARGE_VALUES.has(name) ? LARGE_VALUE_LIMIT : VALUE_LIMIT;
  const valueRefusal = equals === end ? undefined : component(bytes, equals + 1, end, limit, true);
  return valueRefusal === undefined ? undefined : `${quoted(name)} ${valueRefusal}`;
}

/**
 * Checks a request target (`req.url`): the path's segments and the query. Node hands the target
 * over as latin1 text, one character per byte.
 */
export function inspectTarget(url: string): string | undefined {
  const query = url.indexOf('?');
  const path = query === -1 ? url : url.slice(0, query);
  for (let i = 0; i < path.length; i += 1) {
    const code = path.charCodeAt(i);
    // the common case, a plain ASCII path, needs no decoding
    if (code === 0x25 || code > 0x7e || code < 0x21) {
      const refusal = component(Buffer.from(path, 'latin1'), 0, path.length, LARGE_VALUE_LIMIT, false);
      if (refusal !== undefined) return `the path ${refusal}`;
      break;
    }
  }
  return query === -1 ? undefined : inspectForm(Buffer.from(url.slice(query + 1), 'latin1'));
}

/** Checks the credentials of a `Basic` header as the engine decodes them (RFC 6749 §2.3.1: form-encoded, then base64). */
function basicCredentials(value: string): string | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/u.test(value)) return undefined; // malformed: the engine refuses it as invalid_request
  const decoded = Buffer.from(value, 'base64');
  const colon = decoded.indexOf(0x3a);
  const end = colon === -1 ? decoded.length : colon;
  const refusal = component(decoded, 0, end, VALUE_LIMIT, true) ?? component(decoded, Math.min(end + 1, decoded.length), decoded.length, VALUE_LIMIT, true);
  return refusal === undefined ? undefined : `a Basic credential ${refusal}`;
}

/** Checks the header values that carry parameters: `Authorization` and the engine's cookies. */
export function inspectHeaders(headers: IncomingHttpHeaders): string | undefined {
  const authorization = headers.authorization;
  if (authorization !== undefined) {
    if (!/^[\x20-\x7e]*$/u.test(authorization)) return 'the Authorization header contains a character that is not printable ASCII';
    const space = authorization.indexOf(' ');
    if (space !== -1 && authorization.slice(0, space).toLowerCase() === 'basic') {
      const refusal = basicCredentials(authorization.slice(space + 1));
      if (refusal !== undefined) return refusal;
    }
  }
  return headers.cookie === undefined ? undefined : inspectCookies(headers.cookie);
}

function inspectCookies(header: string): string | undefined {
  for (const pair of header.split(';')) {
    const equals = pair.indexOf('=');
    if (equals === -1 || !LOOKED_UP_COOKIE.test(pair.slice(0, equals).trim())) continue;
    const value = pair.slice(equals + 1).trim();
    if (value.length > COOKIE_VALUE_LIMIT || !/^[\x21-\x7e]*$/u.test(value)) return 'a session cookie is malformed';
  }
  return undefined;
}

/** The media type of a `Content-Type` header, lower-cased, and whether its charset (if any) is UTF-8. */
function mediaType(header: string): { type: string; utf8: boolean } {
  const [type = '', ...parameters] = header.split(';');
  const charset = parameters.map((part) => part.trim().toLowerCase()).find((part) => part.startsWith('charset='));
  const name = charset?.slice('charset='.length).replace(/^"|"$/gu, '');
  return { type: type.trim().toLowerCase(), utf8: name === undefined || name === 'utf-8' || name === 'utf8' || name === 'us-ascii' };
}

/**
 * Checks a POST body: form-encoded UTF-8 (the only kind any of Sigil's endpoints and pages
 * reads), then its parameters. An empty body without a content type is accepted.
 */
export function inspectBody(body: Uint8Array, contentType: string | undefined): string | undefined {
  if (contentType === undefined) return body.length === 0 ? undefined : `a request body must be ${FORM}`;
  if (contentType === FORM) return inspectForm(body);
  const { type, utf8 } = mediaType(contentType);
  if (type !== FORM) return `only ${FORM} request bodies are accepted`;
  if (!utf8) return 'a request body must be encoded in UTF-8';
  return inspectForm(body);
}

/** Paths whose answers are pages for a browser, so a refusal is a page too. */
export function isPagePath(path: string): boolean {
  return (
    path === '/auth' ||
    path.startsWith('/auth/') ||
    path.startsWith('/interaction/') ||
    path === '/session/end' ||
    path.startsWith('/session/end/')
  );
}
