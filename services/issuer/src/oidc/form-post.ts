import type Provider from 'oidc-provider';
import instance, { type ResponseModeHandler } from 'oidc-provider/lib/helpers/weak_cache.js';

import { escapeHtml, formActionSource, renderPage, type RenderedPage } from '../interactions/layout.js';
import { respond } from './error-page.js';

/** A response parameter as a form field's value; the engine's are strings (`code`, `state`, `iss`, `error`…). */
function fieldValue(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  return typeof value === 'number' ? String(value) : undefined;
}

/**
 * The OAuth 2.0 Form Post Response Mode page: the response parameters as hidden fields of a
 * form posted to `redirectUri` by the page's one script, or by its button without JavaScript.
 * Its CSP is Sigil's page policy with two differences, on this response only: `form-action`
 * names the redirect URI's origin (which the engine has matched against the client's
 * registration before answering) instead of the issuer, and `script-src` the script's nonce.
 */
export function formPostPage(redirectUri: string, payload: Readonly<Record<string, unknown>>): RenderedPage {
  const fields = Object.entries(payload).flatMap(([name, value]) => {
    const text = fieldValue(value);
    return text === undefined ? [] : [`<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(text)}">`];
  });
  const source = formActionSource(redirectUri);
  return renderPage(
    'Returning to the application',
    `<h1>Returning to the application</h1>
<form method="post" action="${escapeHtml(redirectUri)}">
${fields.join('\n')}
<noscript><p>JavaScript is off: continue to finish signing in.</p><button type="submit">Continue</button></noscript>
</form>`,
    { formAction: source === undefined ? [] : [source], script: 'document.forms[0].submit();' },
  );
}

/** The engine's statuses that an answer keeps; any other becomes 200, or 400 for an error (as the engine's own renderer does). */
const KEPT_STATUSES: ReadonlySet<number> = new Set([200, 400, 500]);

const formPost: ResponseModeHandler = (ctx, redirectUri, payload) => {
  if (!KEPT_STATUSES.has(ctx.status)) ctx.status = 'error' in payload ? 400 : 200;
  respond(ctx, formPostPage(redirectUri, payload));
};

/**
 * Renders `response_mode=form_post` answers (successes and the errors the engine sends to the
 * client) with `formPostPage`. The engine's own page adds its script's hash to whatever CSP the
 * response already has, and the general policy (helmet, app.ts) allows forms to post only to
 * the issuer, so a browser would not submit it. The engine registers its modes when it is
 * built, and `registerResponseMode` keeps a mode already registered: the entry is replaced.
 * @throws when the engine has no form_post mode to replace (an engine upgrade changed it)
 */
export function renderFormPostResponses(provider: Provider): void {
  const { responseModes } = instance(provider);
  if (!responseModes.has('form_post')) throw new Error('the engine registers no form_post response mode to replace');
  responseModes.set('form_post', formPost);
}
