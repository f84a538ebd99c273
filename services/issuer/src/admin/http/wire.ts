import { createHash } from 'node:crypto';

import type { z } from 'zod';

import { splitScope } from '../../domain/validation.js';

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

/** Wire fields whose command field is not their camelCase form. */
const RENAMED: Readonly<Record<string, string>> = { scope: 'scopes' };
const RENAMED_BACK: Readonly<Record<string, string>> = Object.fromEntries(Object.entries(RENAMED).map(([wire, field]) => [field, wire]));

/** The command field of wire field `name` (`redirect_uris` → `redirectUris`, `scope` → `scopes`). */
export function commandField(name: string): string {
  return RENAMED[name] ?? name.replace(/_([a-z0-9])/gu, (_match, letter: string) => letter.toUpperCase());
}

/** The wire name of command field `field` (`redirectUris` → `redirect_uris`, `scopes` → `scope`). */
export function wireName(field: string): string {
  return RENAMED_BACK[field] ?? field.replace(/[A-Z]/gu, (letter) => `_${letter.toLowerCase()}`);
}

/** CLI flags that command messages name, as the wire fields they set. */
const FLAG_FIELDS: Readonly<Record<string, string>> = {
  '--grant': 'grants',
  '--scope': 'scope',
  '--role': 'roles',
  '--redirect-uri': 'redirect_uris',
  '--resource': 'resources',
  '--public': 'public',
  '--first-party': 'first_party',
  '--access-token-ttl': 'access_token_ttl',
  '--require-dpop': 'require_dpop',
  '--grace': 'grace_seconds',
  '--expires-in': 'expires_in',
  '--force': 'force',
};

/** A command's message in the API's words: the fields a CLI flag sets instead of the flag. */
export function wireMessage(message: string): string {
  return message.replace(/--[a-z][a-z-]*/gu, (flag) => FLAG_FIELDS[flag] ?? flag);
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
 * Whether `value` is text a field may hold: no C0 control or DEL (no name, URI or role holds
 * one, and PostgreSQL cannot store U+0000) and no lone surrogate (it has no UTF-8 form).
 */
function isFieldText(value: string): boolean {
  for (let index = 0; index < value.length; index += 1) {
    const unit = value.charCodeAt(index);
    if (unit < 0x20 || unit === 0x7f || (unit >= 0xdc00 && unit <= 0xdfff)) return false;
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = value.charCodeAt(index + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return false;
      index += 1;
    }
  }
  return true;
}

/** Where `value` holds a string (or a field name) with a control character or a lone surrogate, if anywhere. */
function badText(value: unknown, path: string): string | undefined {
  const bad = (text: string) => !isFieldText(text);
  if (typeof value === 'string') return bad(value) ? path : undefined;
  if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) {
      const found = badText(item, `${path}[${index}]`);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  if (typeof value === 'object' && value !== null) {
    for (const [key, item] of Object.entries(value)) {
      const here = path === '' ? key : `${path}.${key}`;
      if (bad(key)) return path === '' ? '(a field name)' : path;
      const found = badText(item, here);
      if (found !== undefined) return found;
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
  const bad = badText(value, '');
  if (bad !== undefined) {
    throw new WireError(`${bad}: control characters are not allowed`, [{ in: 'body', field: bad, message: 'control characters are not allowed' }]);
  }
  return value as Record<string, unknown>;
}

/**
 * The fields of a wire object as a command's input fields. A name that is not a wire name, or
 * is one of `reserved` (fields the path sets), is an unknown field; `scope` must be a string.
 * @throws WireError
 */
export function commandFields(wire: Record<string, unknown>, location: FieldLocation, reserved: readonly string[] = []): Record<string, unknown> {
  const problems: FieldProblem[] = [];
  const fields: [string, unknown][] = [];
  for (const [name, value] of Object.entries(wire)) {
    if (!WIRE_NAME.test(name) || reserved.includes(name)) {
      problems.push({ in: location, field: name, message: 'unknown field' });
    } else if (name === 'scope') {
      if (typeof value === 'string') fields.push(['scopes', splitScope(value)]);
      else problems.push({ in: location, field: name, message: 'scope is a string of space-separated scopes' });
    } else {
      fields.push([commandField(name), value]);
    }
  }
  if (problems.length > 0) throw new WireError(describeProblems(problems), problems);
  return Object.fromEntries(fields);
}

/** One line for a list of problems. */
export function describeProblems(problems: readonly FieldProblem[]): string {
  return problems.map((problem) => (problem.field === undefined ? problem.message : `${problem.field}: ${problem.message}`)).join('; ');
}

/** A strong entity tag (RFC 9110 §8.8.3) of a view: the digest of its JSON, so it changes whenever the view does. */
export function entityTag(view: unknown): string {
  return `"${createHash('sha256').update(JSON.stringify(view)).digest('base64url').slice(0, 27)}"`;
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
