import type Provider from 'oidc-provider';

import { escapeHtml, formActionSource, renderPage, type RenderedPage } from './layout.js';

/** What the engine says of an interaction in progress. */
export type InteractionDetails = Awaited<ReturnType<Provider['interactionDetails']>>;

const SCOPE_LABELS: Record<string, string> = {
  openid: 'Confirm who you are',
  profile: 'See your username',
  email: 'See your email address',
  offline_access: 'Stay signed in to this app (refresh tokens)',
};

/**
 * Where this page's form may post: the issuer, and the client's redirect URI, where the
 * redirects that follow the submission end (browsers check `form-action` along them).
 */
function formAction(details: InteractionDetails): string[] {
  const uri = details.params['redirect_uri'];
  const source = typeof uri === 'string' ? formActionSource(uri) : undefined;
  return source === undefined ? ["'self'"] : ["'self'", source];
}

export function loginPage(details: InteractionDetails, clientName: string, csrf: string, options: { username?: string; error?: string } = {}): RenderedPage {
  const uid = escapeHtml(details.uid);
  const error = options.error === undefined ? '' : `<p class="error" role="alert">${escapeHtml(options.error)}</p>`;
  return renderPage(
    'Sign in',
    `<h1>Sign in</h1>
<p>to continue to <strong>${escapeHtml(clientName)}</strong></p>
${error}
<form method="post" action="/interaction/${uid}/login" novalidate>
<input type="hidden" name="csrf" value="${csrf}">
<label for="username">Username</label>
<input type="text" id="username" name="username" autocomplete="username" autocapitalize="none" spellcheck="false" required value="${escapeHtml(options.username ?? '')}"${options.username === undefined ? ' autofocus' : ''}>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required${options.username === undefined ? '' : ' autofocus'}>
<button type="submit">Sign in</button>
</form>`,
    { formAction: formAction(details) },
  );
}

export function consentPage(details: InteractionDetails, clientName: string, csrf: string): RenderedPage {
  const prompt = details.prompt.details as { missingOIDCScope?: string[]; missingResourceScopes?: Record<string, string[]> };
  const items = [
    ...(prompt.missingOIDCScope ?? []).map((scope) => SCOPE_LABELS[scope] ?? scope),
    ...Object.entries(prompt.missingResourceScopes ?? {}).flatMap(([resource, scopes]) =>
      scopes.map((scope) => `<code>${escapeHtml(scope)}</code> at ${escapeHtml(resource)}`),
    ),
  ];
  const list = items.length === 0 ? '' : `<ul class="scopes">${items.map((item) => `<li>${item.startsWith('<code>') ? item : escapeHtml(item)}</li>`).join('')}</ul>`;
  return renderPage(
    'Allow access',
    `<h1>Allow access?</h1>
<p><strong>${escapeHtml(clientName)}</strong> is asking to:</p>
${list}
<form method="post" action="/interaction/${escapeHtml(details.uid)}/consent">
<input type="hidden" name="csrf" value="${csrf}">
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny" class="secondary">Deny</button>
</form>`,
    { formAction: formAction(details) },
  );
}

export function expiredPage(): RenderedPage {
  return renderPage('Sign-in expired', '<h1>This sign-in has expired</h1><p>Go back to the application and start again.</p>');
}

/** While the database is unreachable: nothing was done, the same step can be tried again shortly. */
export function unavailablePage(): RenderedPage {
  return renderPage(
    'Temporarily unavailable',
    '<h1>Sign-in is temporarily unavailable</h1><p class="error" role="alert"><strong>temporarily_unavailable</strong>: please try again in a few seconds.</p>',
  );
}
