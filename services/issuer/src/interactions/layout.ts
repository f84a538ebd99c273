import { randomBytes } from 'node:crypto';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/gu, (char) => ESCAPES[char] ?? char);
}

const STYLE = `
:root{color-scheme:light dark;--bg:#f4f5f7;--card:#fff;--text:#1c1e21;--muted:#5f6670;--border:#d0d4da;--accent:#3b4cca;--accent-text:#fff;--error-bg:#fdecec;--error:#a61b1b}
@media (prefers-color-scheme:dark){:root{--bg:#14161a;--card:#1e2127;--text:#e8eaed;--muted:#a0a6ae;--border:#3a3f47;--accent:#8091ff;--accent-text:#0d0f14;--error-bg:#3a1d1d;--error:#ffb3b3}}
*{box-sizing:border-box}
body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;background:var(--bg);color:var(--text);font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;padding:16px}
main{width:100%;max-width:380px;background:var(--card);border:1px solid var(--border);border-radius:12px;padding:32px 28px;box-shadow:0 4px 24px rgba(0,0,0,.06)}
.brand{display:flex;align-items:center;gap:10px;font-weight:600;letter-spacing:.02em;color:var(--muted);margin-bottom:20px}
.brand svg{width:28px;height:28px}
h1{font-size:1.4rem;margin:0 0 6px}
p{margin:0 0 16px;color:var(--muted)}
label{display:block;font-weight:600;margin:14px 0 6px}
input[type=text],input[type=password]{width:100%;font:inherit;padding:10px 12px;border:1px solid var(--border);border-radius:8px;background:transparent;color:inherit}
input:focus-visible,button:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
button{width:100%;font:inherit;font-weight:600;padding:11px 14px;border-radius:8px;border:1px solid var(--accent);background:var(--accent);color:var(--accent-text);cursor:pointer;margin-top:20px}
button.secondary{background:transparent;color:var(--text);border-color:var(--border);margin-top:10px}
.error{background:var(--error-bg);color:var(--error);border-radius:8px;padding:10px 12px;margin:0 0 12px}
ul.scopes{margin:0 0 8px;padding-left:20px}
ul.scopes li{margin:4px 0}
code{font-size:.9em}
footer{margin-top:20px;font-size:.85rem;color:var(--muted);text-align:center}
`;

const LOGO =
  '<svg viewBox="0 0 32 32" aria-hidden="true"><rect width="32" height="32" rx="8" fill="currentColor" opacity=".15"/><path d="M16 6l8 4v6c0 5-3.4 8.6-8 10-4.6-1.4-8-5-8-10v-6z" fill="none" stroke="currentColor" stroke-width="2"/><path d="M12.5 16l2.5 2.5 4.5-5" fill="none" stroke="currentColor" stroke-width="2"/></svg>';

/** A private-use scheme as client registration accepts it (domain/validation.ts `redirectUri`). */
const PRIVATE_USE_SCHEME = /^[a-z][a-z0-9+.-]*\.[a-z0-9+.-]+:$/u;

/** A CSP host-source's host (CSP3 §2.3.1): DNS labels or an IPv4 address; IPv6 literals have no host-source. */
const SOURCE_HOST = /^[a-z0-9-]+(?:\.[a-z0-9-]+)*$/u;

/**
 * The CSP `form-action` source that lets a page post to `redirectUri` and nowhere else: its
 * origin for https and http (`http://127.0.0.1:8080`), its scheme for a native app's
 * private-use scheme (`com.example.app:`), which is the app's alone. Undefined when no source
 * expression names it: an IPv6 literal (`http://[::1]:8080`), for which browsers block the post.
 */
export function formActionSource(redirectUri: string): string | undefined {
  const url = URL.parse(redirectUri);
  if (url === null) return undefined;
  if (url.protocol === 'https:' || url.protocol === 'http:') return SOURCE_HOST.test(url.hostname) ? url.origin : undefined;
  return PRIVATE_USE_SCHEME.test(url.protocol) ? url.protocol : undefined;
}

export interface RenderedPage {
  readonly html: string;
  /** The Content-Security-Policy for this page (a nonce for its one style element, and its one script if it has one). */
  readonly csp: string;
}

export interface PageOptions {
  /** The sources the page's forms may post to (CSP `form-action`): the issuer itself unless told. */
  readonly formAction?: readonly string[];
  /** One inline script, run at the end of the body under the page's nonce; no page has any other. */
  readonly script?: string;
}

/**
 * A complete page: accessible, usable without JavaScript and at phone width. Its CSP allows
 * nothing but its own style (and script, when given), forms posting to the `formAction`
 * sources, and no framing (RFC 9700 §4.16).
 */
export function renderPage(title: string, body: string, { formAction = ["'self'"], script }: PageOptions = {}): RenderedPage {
  const nonce = randomBytes(16).toString('base64');
  const html = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)} · Sigil</title>
<style nonce="${nonce}">${STYLE}</style>
</head>
<body>
<main>
<div class="brand">${LOGO}<span>Sigil</span></div>
${body}
</main>
${script === undefined ? '' : `<script nonce="${nonce}">${script}</script>\n`}</body>
</html>`;
  const csp = [
    "default-src 'none'",
    `style-src 'nonce-${nonce}'`,
    ...(script === undefined ? [] : [`script-src 'nonce-${nonce}'`]),
    "img-src 'self' data:",
    `form-action ${formAction.length === 0 ? "'none'" : formAction.join(' ')}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; ');
  return { html, csp };
}
