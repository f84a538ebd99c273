import type { KoaContextWithOIDC } from 'oidc-provider';

import { escapeHtml, renderPage, type RenderedPage } from '../interactions/layout.js';

function respond(ctx: KoaContextWithOIDC, page: RenderedPage): void {
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

/** RP-initiated logout: asks before ending the session. `form` is the engine's hidden form. */
export async function logoutSource(ctx: KoaContextWithOIDC, form: string): Promise<void> {
  const name = ctx.oidc.client?.clientName ?? ctx.oidc.client?.clientId;
  respond(
    ctx,
    renderPage(
      'Sign out',
      `<h1>Sign out?</h1>
<p>${name === undefined ? 'You will be signed out of Sigil.' : `<strong>${escapeHtml(name)}</strong> asks to sign you out.`}</p>
${form}
<button type="submit" form="op.logoutForm" name="logout" value="yes">Sign out</button>
<button type="submit" form="op.logoutForm" class="secondary">Stay signed in</button>`,
    ),
  );
}

export async function postLogoutSuccessSource(ctx: KoaContextWithOIDC): Promise<void> {
  respond(ctx, renderPage('Signed out', '<h1>You are signed out</h1><p>You can close this window.</p>'));
}
