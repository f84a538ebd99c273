import { describe, expect, it } from '@jest/globals';

import { bearerCandidate, bearerToken, dpopCandidate, dpopToken } from '../src/credentials.js';

/** A b64token (RFC 6750 §2.1): its characters, then padding `=` only at the end. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/u;

/** Headers put together from a scheme and pieces of tokens, reproducibly (the MINSTD pseudo-random sequence). */
function headers(count: number, schemes = ['Bearer', 'bearer', 'BEARER', 'bEaReR', 'Basic', 'Bearer=', '']): string[] {
  const pieces = [' ', '  ', '\t', 'eyJ', 'a', 'Z', '0', '-', '.', '_', '~', '+', '/', '=', '==', ',', '"', 'é', 'Bearer'];
  let seed = 42;
  const next = () => {
    seed = (seed * 48_271) % 2_147_483_647;
    return seed;
  };
  const pick = (from: string[]) => from[next() % from.length] ?? '';
  return Array.from({ length: count }, () => pick(schemes) + Array.from({ length: 1 + (next() % 8) }, () => pick(pieces)).join(''));
}

describe('guard: the two Authorization parsers (credentials.ts)', () => {
  it('when the fast candidate is a b64token, the strict parser finds that same token', () => {
    const cases = [
      'Bearer abc',
      'bearer   abc  ',
      'BEARER abc==',
      'Bearer abc==x',
      'Bearerabc',
      'Bearer\tabc',
      'Bearer abc abc',
      'Bearer abc,',
      'Bearer =',
      'Bearer ',
      'Bearer',
      'Basic abc',
      ...headers(20_000),
    ];
    let checked = 0;
    for (const header of cases) {
      const candidate = bearerCandidate(header);
      if (candidate === undefined || !B64TOKEN.test(candidate)) continue;
      checked += 1;
      expect({ header, token: bearerToken(header) }).toEqual({ header, token: candidate });
    }
    // enough of them were candidates worth the check
    expect(checked).toBeGreaterThan(200);
  });

  it('when the fast DPoP candidate is a b64token, the strict DPoP parser finds that same token; a Bearer header is never a DPoP candidate', () => {
    const cases = ['DPoP abc', 'dpop   abc  ', 'DPOP abc==', 'DPoP abc==x', 'DPoPabc', 'DPoP\tabc', 'DPoP abc abc', 'DPoP ', 'DPoP', 'Bearer abc', ...headers(20_000, ['DPoP', 'dpop', 'DPOP', 'dPoP', 'Bearer', 'DPoP=', ''])];
    let checked = 0;
    for (const header of cases) {
      const candidate = dpopCandidate(header);
      if (/^bearer/iu.test(header)) expect({ header, candidate }).toEqual({ header, candidate: undefined });
      if (candidate === undefined || !B64TOKEN.test(candidate)) continue;
      checked += 1;
      expect({ header, token: dpopToken(header) }).toEqual({ header, token: candidate });
    }
    expect(checked).toBeGreaterThan(200);
  });
});
