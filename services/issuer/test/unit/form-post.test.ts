import { describe, expect, it } from '@jest/globals';

import { formActionSource } from '../../src/interactions/layout.js';
import { formPostPage } from '../../src/oidc/form-post.js';

describe('formActionSource', () => {
  it('when the redirect URI is https or http, answers its origin, with a port only when it is not the default', () => {
    expect(formActionSource('https://app.example.com/cb?x=1')).toBe('https://app.example.com');
    expect(formActionSource('https://app.example.com:8443/cb')).toBe('https://app.example.com:8443');
    expect(formActionSource('http://127.0.0.1:3000/callback')).toBe('http://127.0.0.1:3000');
    expect(formActionSource('https://bücher.example/cb')).toBe('https://xn--bcher-kva.example');
  });

  it('when the redirect URI has a private-use scheme, answers the scheme alone', () => {
    expect(formActionSource('com.example.app:/callback')).toBe('com.example.app:');
  });

  it('when no CSP source can name the redirect URI (an IPv6 literal, an unparsable or other scheme), answers undefined', () => {
    expect(formActionSource('http://[::1]:3000/callback')).toBeUndefined();
    expect(formActionSource('not a url')).toBeUndefined();
    expect(formActionSource('javascript:alert(1)')).toBeUndefined();
  });
});

describe('formPostPage', () => {
  it('when it renders a response, every field is a hidden input with its name and value escaped, posted to the redirect URI only', () => {
    const page = formPostPage('https://app.example.com/cb?a=1&b=2', { code: 'abc', state: '"><script>x</script>', 'we"ird': 'v', nothing: undefined, count: 3 });
    expect(page.html).toContain('<form method="post" action="https://app.example.com/cb?a=1&amp;b=2">');
    expect(page.html).toContain('<input type="hidden" name="code" value="abc">');
    expect(page.html).toContain('<input type="hidden" name="state" value="&quot;&gt;&lt;script&gt;x&lt;/script&gt;">');
    expect(page.html).toContain('<input type="hidden" name="we&quot;ird" value="v">');
    expect(page.html).toContain('<input type="hidden" name="count" value="3">');
    expect(page.html).not.toContain('name="nothing"');
    expect(/form-action ([^;]*)/u.exec(page.csp)?.[1]).toBe('https://app.example.com');
    expect(page.csp).not.toContain('unsafe-inline');
    const nonce = /script-src 'nonce-([^']+)'/u.exec(page.csp)?.[1];
    expect([...page.html.matchAll(/<script([^>]*)>/gu)].map((match) => match[1])).toEqual([` nonce="${nonce}"`]);
  });

  it('when no CSP source can name the redirect URI, forms may post nowhere', () => {
    expect(formPostPage('http://[::1]:3000/cb', { code: 'abc' }).csp).toContain("form-action 'none'");
  });
});
