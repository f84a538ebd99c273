import type { ServerResponse } from 'node:http';

import type { KoaContextWithOIDC } from 'oidc-provider';

import { escapeHtml, renderPage, type RenderedPage } from '../interactions/layout.js';

/** Answers an engine request with one of Sigil's pages. */
export function respond(ctx: KoaContextWithOIDC, page: RenderedPage): void {
  ctx.type = 'html';
  ctx.set('Content-Security-Policy', page.csp);
  ctx.body = page.html;
}

/** The body of an error page: the OAuth error and its description. */
function errorContent(error: string, description: string | undefined): string {
  return `<h1>Sign-in could not continue</h1>
<p class="error" role="alert"><strong>${escapeHtml(error)}</strong>${description === undefined ? '' : `: ${escapeHtml(description)}`}</p>
<p>Go back to the application and try again.</p>`;
}

/**
 * Answers a plain node response with an error page (a request the input gate refuses on a
 * page route): the page's own CSP replaces the general one, which it only narrows.
 */
export function sendErrorPage(res: ServerResponse, status: number, error: string, description: string): void {
  const page = renderPage('Sign-in error', errorContent(error, description));
  res.statusCode = status;
  res.setHeader('Content-Security-Policy', page.csp);
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.end(page.html);
}

/**
 * The page a browser sees when an authorization request cannot be redirected back to the
 * client (unknown client, unregistered redirect URI…): the OAuth error and its description,
 * never a stack.
 */
export async function renderError(
  ctx: KoaContextWithOIDC,
  out: { error: string; error_description?: string | undefined },
): Promise<void> {
  respond(ctx, renderPage('Sign-in error', errorContent(out.error, out.error_description)));
}
