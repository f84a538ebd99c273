import { describe, expect, it } from '@jest/globals';

import {
  inspectBody,
  inspectForm,
  inspectHeaders,
  inspectTarget,
  isPagePath,
  LARGE_VALUE_LIMIT,
  PARAMETER_LIMIT,
  VALUE_LIMIT,
} from '../../src/http/input-gate.js';

const form = (text: string) => inspectForm(Buffer.from(text, 'latin1'));
const FORM = 'application/x-www-form-urlencoded';

describe('input gate: form-encoded parameters', () => {
  it('accepts well-formed UTF-8 text, escaped or raw, with + as a space', () => {
    expect(form('grant_type=client_credentials&scope=orders%3Aread+orders%3Awrite')).toBeUndefined();
    expect(form(`username=${encodeURIComponent('zoë 日本 😀')}`)).toBeUndefined();
    expect(inspectForm(Buffer.from('username=zoë&password=p😀ss'))).toBeUndefined();
    expect(form('a=&b&&c==d&')).toBeUndefined();
    expect(form('')).toBeUndefined();
  });

  it.each([
    ['NUL', '%00'],
    ['SOH', '%01'],
    ['TAB', '%09'],
    ['LF', '%0A'],
    ['CR', '%0d'],
    ['ESC', '%1B'],
    ['DEL', '%7F'],
    ['C1 NEL', '%C2%85'],
    ['C1 CSI', '%C2%9B'],
  ])('refuses a %s control character, escaped', (_name, escape) => {
    expect(form(`grant_type=password&username=a${escape}b`)).toBe('the parameter "username" contains a control character');
  });

  it('refuses a raw control byte, in a value or a name', () => {
    expect(form('state=a\u0000b')).toBe('the parameter "state" contains a control character');
    expect(form('sta\u001bte=x')).toBe('a parameter name contains a control character');
  });

  it.each([
    ['a lone continuation byte', '%80'],
    ['an impossible byte', '%FF'],
    ['a truncated sequence', '%E2%82'],
    ['a truncated sequence before another character', '%E2%82a'],
    ['an overlong slash', '%C0%AF'],
    ['an overlong three-byte form', '%E0%80%AF'],
    ['a UTF-16 surrogate', '%ED%A0%80'],
    ['a code point above U+10FFFF', '%F4%90%80%80'],
    ['a bad continuation', '%C3%28'],
  ])('refuses invalid UTF-8 (%s) instead of replacing it with U+FFFD', (_name, escape) => {
    expect(form(`nonce=x${escape}`)).toBe('the parameter "nonce" is not valid UTF-8');
  });

  it('refuses raw bytes that are not UTF-8', () => {
    expect(inspectForm(Buffer.from([0x61, 0x3d, 0xff]))).toBe('the parameter "a" is not valid UTF-8');
  });

  it.each([['%'], ['%4'], ['%G0'], ['%%41']])('refuses a malformed percent-escape (%s)', (escape) => {
    expect(form(`code=${escape}`)).toBe('the parameter "code" has a malformed percent-escape');
  });

  it('refuses a malformed escape that would borrow the next parameter\'s bytes', () => {
    expect(form('code=%4&b=1')).toBe('the parameter "code" has a malformed percent-escape');
  });

  it('limits values to 4 KiB, and JWT-carrying parameters to 48 KiB, in decoded bytes', () => {
    expect(form(`state=${'a'.repeat(VALUE_LIMIT)}`)).toBeUndefined();
    expect(form(`state=${'a'.repeat(VALUE_LIMIT + 1)}`)).toBe('the parameter "state" is too long');
    expect(form(`state=${'%41'.repeat(VALUE_LIMIT)}`)).toBeUndefined();
    expect(form(`request=${'a'.repeat(VALUE_LIMIT + 1)}`)).toBeUndefined();
    expect(form(`client_assertion=${'a'.repeat(LARGE_VALUE_LIMIT + 1)}`)).toBe('the parameter "client_assertion" is too long');
  });

  it('refuses a repeated parameter, except resource (RFC 8707 §2)', () => {
    expect(form('scope=a&scope=b')).toBe('the parameter "scope" is repeated');
    expect(form('scope=a&scop%65=b')).toBe('the parameter "scope" is repeated');
    expect(form('resource=https%3A%2F%2Fa&resource=https%3A%2F%2Fb')).toBeUndefined();
  });

  it('refuses more than the parameter limit', () => {
    const many = (n: number) => Array.from({ length: n }, (_, i) => `p${i}=v`).join('&');
    expect(form(many(PARAMETER_LIMIT))).toBeUndefined();
    expect(form(many(PARAMETER_LIMIT + 1))).toBe('the request carries too many parameters');
    expect(form(Array.from({ length: PARAMETER_LIMIT + 1 }, () => 'resource=https%3A%2F%2Fa').join('&'))).toBe('the request carries too many parameters');
  });

  it('quotes only a plain parameter name in its description', () => {
    expect(form('%3Cb%3E=%00')).toBe('a parameter contains a control character');
  });
});

describe('input gate: request target', () => {
  it('accepts a plain path and query, with no decoding for a plain ASCII path', () => {
    expect(inspectTarget('/token')).toBeUndefined();
    expect(inspectTarget('/auth?client_id=abc&scope=openid%20profile')).toBeUndefined();
    expect(inspectTarget('/interaction/Xy_-1')).toBeUndefined();
  });

  it('refuses a control character or invalid UTF-8 in the path or the query', () => {
    expect(inspectTarget('/interaction/%00')).toBe('the path contains a control character');
    expect(inspectTarget('/auth/%FF')).toBe('the path is not valid UTF-8');
    expect(inspectTarget('/auth?state=%00')).toBe('the parameter "state" contains a control character');
    expect(inspectTarget('/auth?state=\u00ff')).toBe('the parameter "state" is not valid UTF-8');
  });
});

describe('input gate: headers', () => {
  const basic = (text: string | Buffer) => `Basic ${Buffer.from(text).toString('base64')}`;

  it('accepts well-formed Basic credentials, a Bearer token and unrelated cookies', () => {
    expect(inspectHeaders({ authorization: basic('client:s3cr%2Bt') })).toBeUndefined();
    expect(inspectHeaders({ authorization: 'Bearer eyJ.abc.def' })).toBeUndefined();
    expect(inspectHeaders({ cookie: 'theme=d\u00e9j\u00e0; _session=abc123; _session.sig=Zm9v' })).toBeUndefined();
  });

  it('refuses Basic credentials that decode to a control character or invalid UTF-8', () => {
    expect(inspectHeaders({ authorization: basic('client%00:secret') })).toBe('a Basic credential contains a control character');
    expect(inspectHeaders({ authorization: basic('client:sec\u0000ret') })).toBe('a Basic credential contains a control character');
    expect(inspectHeaders({ authorization: basic(Buffer.from([0x61, 0x3a, 0xff])) })).toBe('a Basic credential is not valid UTF-8');
    expect(inspectHeaders({ authorization: basic('%ZZ:x') })).toBe('a Basic credential has a malformed percent-escape');
  });

  it('leaves a malformed Basic header to the engine, which refuses it', () => {
    expect(inspectHeaders({ authorization: 'Basic !!!' })).toBeUndefined();
  });

  it('refuses an Authorization header that is not printable ASCII', () => {
    expect(inspectHeaders({ authorization: 'Bearer a\tb' })).toMatch(/^the Authorization header/u);
    expect(inspectHeaders({ authorization: 'Bearer \u00ff' })).toMatch(/^the Authorization header/u);
  });

  it('refuses a malformed value of a cookie the engine looks up', () => {
    expect(inspectHeaders({ cookie: '_session=a\tb' })).toBe('a session cookie is malformed');
    expect(inspectHeaders({ cookie: '_interaction=\u00ff' })).toBe('a session cookie is malformed');
    expect(inspectHeaders({ cookie: `_interaction_resume.sig=${'x'.repeat(600)}` })).toBe('a session cookie is malformed');
  });
});

describe('input gate: bodies and whole requests', () => {
  it('accepts a UTF-8 form body, and an empty body without a content type', () => {
    expect(inspectBody(Buffer.from('grant_type=client_credentials'), FORM)).toBeUndefined();
    expect(inspectBody(Buffer.from('a=b'), `${FORM}; charset=UTF-8`)).toBeUndefined();
    expect(inspectBody(Buffer.alloc(0), undefined)).toBeUndefined();
  });

  it('refuses any other content type or charset, and a body without a content type', () => {
    expect(inspectBody(Buffer.from('{}'), 'application/json')).toBe(`only ${FORM} request bodies are accepted`);
    expect(inspectBody(Buffer.from('a=b'), `${FORM}; charset=utf-16`)).toBe('a request body must be encoded in UTF-8');
    expect(inspectBody(Buffer.from('a=b'), undefined)).toBe(`a request body must be ${FORM}`);
  });

  it('knows the browser routes, whose refusals are pages', () => {
    for (const path of ['/auth', '/auth/uid', '/interaction/uid', '/interaction/uid/login', '/session/end', '/session/end/confirm']) expect(isPagePath(path)).toBe(true);
    for (const path of ['/token', '/me', '/jwks', '/authx', '/request', '/session/endx', '/healthz']) expect(isPagePath(path)).toBe(false);
  });
});
