import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * CSRF tokens for the login and consent forms: an HMAC of the interaction's id keyed with the
 * first cookie key, on top of SameSite cookies (RFC 9700 §4.7).
 */
export interface CsrfTokens {
  token(uid: string): string;
  /** Whether `presented` is this interaction's token (constant-time). */
  valid(uid: string, presented: unknown): boolean;
}

export function csrfTokens(cookieKeys: readonly string[]): CsrfTokens {
  const token = (uid: string) => createHmac('sha256', cookieKeys[0] ?? '').update(`csrf:${uid}`).digest('base64url');
  return {
    token,
    valid(uid, presented) {
      if (typeof presented !== 'string') return false;
      const expected = Buffer.from(token(uid));
      const actual = Buffer.from(presented);
      return expected.length === actual.length && timingSafeEqual(expected, actual);
    },
  };
}
