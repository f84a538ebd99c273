import { z } from 'zod';

/** RFC 6749 §3.3 scope-token: %x21 / %x23-5B / %x5D-7E. */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/u;
const ROLE = /^[A-Za-z0-9][A-Za-z0-9:._-]{0,63}$/u;
const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

export const scopeList = z
  .array(z.string().regex(SCOPE_TOKEN, 'a scope is one or more printable ASCII characters without spaces, " or \\'))
  .max(100)
  .transform((scopes) => [...new Set(scopes)]);

/** Parses a space-delimited scope string (RFC 6749 §3.3). */
export function splitScope(value: string | undefined): string[] {
  return value === undefined ? [] : value.split(' ').filter((scope) => scope !== '');
}

export const roleList = z
  .array(z.string().regex(ROLE, 'a role is 1–64 letters, digits, ":", ".", "_" or "-", starting with a letter or digit'))
  .max(100)
  .transform((roles) => [...new Set(roles)]);

export function isLoopbackHost(hostname: string): boolean {
  return LOOPBACK_HOSTS.has(hostname);
}

/** RFC 8707 §2: an absolute URI without a fragment. */
export const resourceUri = z.string().refine((value) => {
  const url = URL.parse(value);
  return url !== null && url.hash === '' && !value.includes('#') && url.href.length <= 2000;
}, 'a resource must be an absolute URI without a fragment');

/** Whether a client may register `value` as a URI to send browsers back to (`redirectUri`). */
function isRedirectableUri(value: string): boolean {
  const url = URL.parse(value);
  if (url === null || url.hash !== '' || value.includes('#')) return false;
  if (url.protocol === 'https:') return true;
  if (url.protocol === 'http:') return isLoopbackHost(url.hostname);
  return /^[a-z][a-z0-9+.-]*\.[a-z0-9+.-]+:$/u.test(url.protocol);
}

const REDIRECTABLE = 'https, http on localhost/127.0.0.1/[::1], or a private-use scheme such as com.example.app:/cb, without a fragment';

/**
 * A redirect URI a client may register (RFC 9700 §2.1, §4.11): https, http on a loopback
 * host, or a private-use scheme (`com.example.app:/callback`) for native apps. No fragment.
 */
export const redirectUri = z.string().refine(isRedirectableUri, `a redirect URI must be ${REDIRECTABLE}`);

/**
 * Where a client may have the browser sent back after RP-initiated logout (OpenID Connect
 * RP-Initiated Logout 1.0 §3.1): the browser carries the same `state` there as to a redirect
 * URI, so the same rules hold.
 */
export const postLogoutRedirectUri = z.string().refine(isRedirectableUri, `a post-logout redirect URI must be ${REDIRECTABLE}`);
