import type { KoaContextWithOIDC } from 'oidc-provider';

import { escapeHtml, formActionSource, renderPage } from '../interactions/layout.js';
import { respond } from './error-page.js';

/**
 * Where the confirm form may post: the issuer, and the origin of the post-logout redirect URI
 * the engine has matched against the client's registration. Browsers hold a form's redirects
 * to `form-action` too, and the engine answers the confirm post with a 303 to that URI.
 */
function logoutFormAction(ctx: KoaContextWithOIDC): string[] {
  const uri = ctx.oidc.params?.['post_logout_redirect_uri'];
  const source = typeof uri === 'string' ? formActionSource(uri) : undefined;
  return source === undefined ? ["'self'"] : ["'self'", source];
}

/**
 * RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0 §2–3): asks before ending the
 * session, which the engine ends once the user confirms with its hidden `form`.
 */
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
      { formAction: logoutFormAction(ctx) },
    ),
  );
}

export async function postLogoutSuccessSource(ctx: KoaContextWithOIDC): Promise<void> {
  respond(ctx, renderPage('Signed out', '<h1>You are signed out</h1><p>You can close this window.</p>'));
}
