import { describe, expect, it } from '@jest/globals';

import { jsonSecurityHeaders } from '../../src/app.js';

const byName = (issuer: string) => Object.fromEntries(jsonSecurityHeaders({ issuer }).map(([name, value]) => [name.toLowerCase(), value]));

describe('the JSON endpoints’ security headers (S8, S9)', () => {
  it('on an https issuer: HSTS as on pages, nosniff, no referrer, same-origin resources, nothing loaded or framed', () => {
    expect(byName('https://id.example.com')).toEqual({
      'strict-transport-security': 'max-age=31536000; includeSubDomains',
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'cross-origin-resource-policy': 'same-origin',
      'content-security-policy': "default-src 'none'; form-action 'none'; frame-ancestors 'none'",
      'x-frame-options': 'DENY',
    });
  });

  it('on an http issuer (development) no HSTS, which would send browsers to https', () => {
    expect(byName('http://localhost:3000')['strict-transport-security']).toBeUndefined();
    expect(Object.keys(byName('http://localhost:3000'))).toHaveLength(5);
  });
});
