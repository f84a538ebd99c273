import type { KoaContextWithOIDC } from 'oidc-provider';

import { escapeHtml, renderPage, type RenderedPage } from '../interactions/layout.js';

/** Answers an engine request with one of Sigil's pages. */
export function respond(ctx: KoaContextWithOIDC, page: RenderedPage): void {
  ctx.type = 'html';
  ctx.set('Content-Security-Policy', page.csp);
  ctx.body = page.html;
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
  respond(
    ctx,
    renderPage(
      'Sign-in error',
      `<h1>Sign-in could not continue</h1>
<p class="error" role="alert"><strong>${escapeHtml(out.error)}</strong>${out.error_description === undefined ? '' : `: ${escapeHtml(out.error_description)}`}</p>
<p>Go back to the application and try again.</p>`,
    ),
  );
}
