import { createHash } from 'node:crypto';

import type { z } from 'zod';

import { splitScope } from '../../domain/validation.js';
import { commandField, RENAMED_BACK, wireName } from '../views.js';

/**
 * The admin API's wire format: snake_case JSON fields, as the CLI's `--json` prints them, over
 * the admin commands' camelCase inputs (`redirect_uris` ↔ `redirectUris`). One mechanical rule
 * maps a field between the two, so the commands' schemas validate API requests as they are and
 * describe them in the OpenAPI document (openapi.ts); `scope`, a space-separated string on the
 * wire as in every view and in OAuth, is the command's `scopes` list.
 */

/** Where a bad value was found in a request. */
export type FieldLocation = 'body' | 'query' | 'path' | 'header';

/** One thing wrong with a request, named as the caller wrote it. */
export interface FieldProblem {
  readonly in: FieldLocation;
  /** The field or parameter (`redirect_uris[0]`); absent for a rule between fields. */
  readonly field?: string;
  readonly message: string;
}

/** A wire field name: lower-case words joined by `_`. Anything else names no field. */
const WIRE_NAME = /^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$/u;

/** CLI flags that command messages name, as the wire fields they set. */
const FLAG_FIELDS: Readonly<Record<string, string>> = {
  '--grant': 'grants',
  '--scope': 'scope',
  '--role': 'roles',
  '--redirect-uri': 'redirect_uris',
  '--post-logout-redirect-uri': 'post_logout_redirect_uris',
  '--resource': 'resources',
  '--public': 'public',
  '--first-party': 'first_party',
  '--access-token-ttl': 'access_token_ttl',
  '--auth': 'auth',
  '--jwks-file': 'jwks',
  '--jwks-uri': 'jwks_uri',
  '--require-dpop': 'require_dpop',
  '--may-exchange-for': 'may_exchange_for',
  '--grace': 'grace_seconds',
  '--expires-in': 'expires_in',
  '--force': 'force',
};

/** A command's message in the API's words: the fields a CLI flag sets instead of the flag. */
export function wireMessage(message: string): string {
  return message.replace(/--[a-z][a-z-]*/gu, (flag) => (Object.hasOwn(FLAG_FIELDS, flag) ? String(FLAG_FIELDS[flag]) : flag));
}

/** `['redirectUris', 0]` → `redirect_uris[0]`. */
function wirePath(path: readonly PropertyKey[]): string {
  return path.map((part, index) => (typeof part === 'number' ? `[${part}]` : `${index === 0 ? '' : '.'}${wireName(String(part))}`)).join('');
}

/**
 * A command's schema findings as field problems. `locate` says where a top-level field came
 * from (the path, the query or the body).
 */
export function fieldProblems(issues: readonly z.core.$ZodIssue[], locate: (field: string | undefined) => FieldLocation): FieldProblem[] {
  return issues.flatMap((issue): FieldProblem[] => {
    const top = issue.path[0] === undefined ? undefined : String(issue.path[0]);
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ in: locate(key), field: wirePath([...issue.path, key]), message: 'unknown field' }));
    }
    const field = issue.path.length === 0 ? undefined : wirePath(issue.path);
    return [{ in: locate(top), ...(field === undefined ? {} : { field }), message: wireMessage(issue.message) }];
  });
}

/** Thrown for a request the admin API cannot take as it is. */
export class WireError extends Error {
  override name = 'WireError';
  constructor(
    message: string,
    readonly problems: readonly FieldProblem[] = [],
    /** 400, or 415 for a body that is not JSON by its media type. */
    readonly status: 400 | 415 = 400,
  ) {
    super(message);
  }
}

/**
 * Code units no field holds: C0 and C1 controls and DEL (no name, URI or role holds one, and
 * PostgreSQL cannot store U+0000), the line and paragraph separators, and the bidirectional
 * embeddings, overrides and isolates, which would reorder what a consent page or a terminal
 * shows of a name.
 */
function isInvisibleControl(unit: number): boolean {
  return unit < 0x20 || (unit >= 0x7f && unit <= 0x9f) || unit === 0x2028 || unit === 0x2029 || (unit >= 0x202a && unit <= 0x202e) || (unit >= 0x2066 && unit <= 0x2069);
}

/** Whether `value` is text a field may hold: none of {@link isInvisibleControl}, and no lone surrogate (it has no UTF-8 form). */
function isFieldText(value: string): boolean {
  for (let index = 0; index < value.length; index += 1) {
    const unit = value.charCodeAt(index);
    if (isInvisibleControl(unit) || (unit >= 0xdc00 && unit <= 0xdfff)) return false;
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = value.charCodeAt(index + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return false;
      index += 1;
    }
  }
  return true;
}

/** How deep a body may nest (no admin input nests more than two levels). */
const MAX_DEPTH = 16;

/**
 * What is wrong with the text of a parsed body, if anything: where a string (or a field name)
 * holds a control character or a lone surrogate, or that it nests deeper than MAX_DEPTH.
 * Walked with a stack of its own, so no body can exhaust the call stack.
 */
function badText(body: Record<string, unknown>): FieldProblem | undefined {
  const pending: { value: unknown; path: string; depth: number }[] = [{ value: body, path: '', depth: 0 }];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const { value, path, depth } = next;
    if (typeof value === 'string') {
      if (!isFieldText(value)) return { in: 'body', field: path, message: 'control characters are not allowed' };
    } else if (typeof value === 'object' && value !== null) {
      if (depth >= MAX_DEPTH) return { in: 'body', field: path, message: `nested more than ${MAX_DEPTH} levels deep` };
      const entries = Array.isArray(value) ? value.map((item, index) => [`[${index}]`, item] as const) : Object.entries(value).map(([key, item]) => [key, item] as const);
      for (const [key, item] of entries.reverse()) {
        if (!Array.isArray(value) && !isFieldText(key)) return { in: 'body', ...(path === '' ? {} : { field: path }), message: 'control characters are not allowed in a field name' };
        pending.push({ value: item, path: Array.isArray(value) ? `${path}${key}` : path === '' ? key : `${path}.${key}`, depth: depth + 1 });
      }
    }
  }
  return undefined;
}

/**
 * A request body (already read, at most the body limit) as a JSON object: UTF-8, JSON, an
 * object, no control character in any string. An empty body is `{}`.
 * @throws WireError
 */
export function parseBody(raw: Buffer): Record<string, unknown> {
  if (raw.length === 0) return {};
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch {
    throw new WireError('the body is not valid UTF-8');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new WireError('the body is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new WireError('the body is a JSON object');
  const body = value as Record<string, unknown>;
  const bad = badText(body);
  if (bad !== undefined) throw new WireError(describeProblems([bad]), [bad]);
  return body;
}

/**
 * The fields of a wire object as a command's input fields, and the problems of those that
 * cannot be: a name that is not a wire name, or is one of `reserved` (fields the path sets), is
 * an unknown field; `scope` must be a string. The fields that could be mapped are returned
 * either way, so their own problems can be found too.
 */
export function commandFields(wire: Record<string, unknown>, location: FieldLocation, reserved: readonly string[] = []): { fields: Record<string, unknown>; problems: FieldProblem[] } {
  const problems: FieldProblem[] = [];
  const fields: [string, unknown][] = [];
  for (const [name, value] of Object.entries(wire)) {
    // a command field with a wire name of its own (`scopes`) is known only by that name
    if (!WIRE_NAME.test(name) || reserved.includes(name) || Object.hasOwn(RENAMED_BACK, name)) {
      problems.push({ in: location, field: name, message: 'unknown field' });
    } else if (name === 'scope') {
      if (typeof value === 'string') fields.push(['scopes', splitScope(value)]);
      else problems.push({ in: location, field: name, message: 'scope is a string of space-separated scopes' });
    } else {
      fields.push([commandField(name), value]);
    }
  }
  return { fields: Object.fromEntries(fields), problems };
}

/** One line for a list of problems. */
export function describeProblems(problems: readonly FieldProblem[]): string {
  return problems.map((problem) => (problem.field === undefined ? problem.message : `${problem.field}: ${problem.message}`)).join('; ');
}

/**
 * A strong entity tag (RFC 9110 §8.8.3) of a view: the digest of its JSON, so it changes
 * whenever what an administrator set does. A usage stamp (`last_used_at`, written as an API key
 * is used) is no change of the object and is left out, or every key in use would fail its
 * `If-Match`.
 */
export function entityTag(view: unknown): string {
  const versioned = typeof view === 'object' && view !== null && 'last_used_at' in view ? { ...view, last_used_at: undefined } : view;
  return `"${createHash('sha256').update(JSON.stringify(versioned)).digest('base64url').slice(0, 27)}"`;
}

/** One entity-tag of a list: `W/` (weak) or not, then a quoted opaque tag (RFC 9110 §8.8.3). */
const ENTITY_TAG = /^(W\/)?"([\x21\x23-\x7e\x80-\xff]*)"$/u;

/**
 * An `If-Match` header (RFC 9110 §13.1.1) as a test of the current entity tag: `*` matches
 * any current representation; otherwise one of the listed tags must match it by strong
 * comparison (a weak tag never does). undefined: no header.
 * @throws WireError for a value that is neither `*` nor a list of entity tags
 */
export function ifMatch(header: string | undefined): ((tag: string) => boolean) | undefined {
  if (header === undefined) return undefined;
  const value = header.trim();
  if (value === '*') return () => true;
  const tags = value.split(',').map((part) => part.trim()).filter((part) => part !== '');
  const strong: string[] = [];
  for (const tag of tags) {
    const match = ENTITY_TAG.exec(tag);
    if (match === null) throw new WireError('If-Match is "*" or a list of entity tags ("…")', [{ in: 'header', field: 'If-Match', message: 'not a list of entity tags' }]);
    if (match[1] === undefined) strong.push(tag);
  }
  if (tags.length === 0) throw new WireError('If-Match is "*" or a list of entity tags ("…")');
  return (current) => strong.includes(current);
}
