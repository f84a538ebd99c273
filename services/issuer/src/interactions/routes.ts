import { createHmac, timingSafeEqual } from 'node:crypto';

import express, { type Request, type Response, type Router } from 'express';
import type Provider from 'oidc-provider';

import type { PasswordHasher } from '../domain/passwords.js';
import { signIn, type SignInStores } from '../domain/sign-in.js';
import type { Logger } from '../logger.js';
import type { IssuerMetrics } from '../metrics.js';
import { escapeHtml, renderPage, type RenderedPage } from './layout.js';

export interface InteractionDependencies {
  readonly provider: () => Provider;
  readonly stores: SignInStores;
  readonly hasher: PasswordHasher;
  readonly metrics: IssuerMetrics;
  readonly cookieKeys: readonly string[];
  readonly logger: Logger;
}

type Details = Awaited<ReturnType<Provider['interactionDetails']>>;

const SCOPE_LABELS: Record<string, string> = {
  openid: 'Confirm who you are',
  profile: 'See your username',
  email: 'See your email address',
  offline_access: 'Stay signed in to this app (refresh tokens)',
};

function send(res: Response, status: number, page: RenderedPage): void {
  res.status(status);
  res.setHeader('Content-Security-Policy', page.csp);
  res.setHeader('Cache-Control', 'no-store');
  res.type('html').send(page.html);
}

/** Origins a form submission may end up at: this issuer, then the client's redirect URIs. */
function redirectOrigins(details: Details): string[] {
  const uri = details.params['redirect_uri'];
  const url = typeof uri === 'string' ? URL.parse(uri) : null;
  return url === null ? [] : [url.protocol === 'http:' || url.protocol === 'https:' ? url.origin : `${url.protocol}`];
}

/**
 * The login and consent pages of the authorization code flow (RFC 9700 §4.12, §4.16):
 * server-rendered, CSRF-protected, never framed, 303 after every POST.
 */
export function interactionRoutes({ provider, stores, hasher, metrics, cookieKeys, logger }: InteractionDependencies): Router {
  const router = express.Router();
  const form = express.urlencoded({ extended: false, limit: '8kb', parameterLimit: 20 });

  /** A token bound to this interaction, keyed with the cookie key (double protection with SameSite cookies). */
  const csrfToken = (uid: string) => createHmac('sha256', cookieKeys[0] ?? '').update(`csrf:${uid}`).digest('base64url');
  const csrfValid = (uid: string, presented: unknown) => {
    if (typeof presented !== 'string') return false;
    const expected = Buffer.from(csrfToken(uid));
    const actual = Buffer.from(presented);
    return expected.length === actual.length && timingSafeEqual(expected, actual);
  };

  const clientName = async (clientId: unknown) => {
    const client = typeof clientId === 'string' ? await provider().Client.find(clientId) : undefined;
    return client?.clientName ?? (typeof clientId === 'string' ? clientId : 'an application');
  };

  function loginPage(details: Details, name: string, options: { username?: string; error?: string } = {}): RenderedPage {
    const uid = escapeHtml(details.uid);
    const error = options.error === undefined ? '' : `<p class="error" role="alert">${escapeHtml(options.error)}</p>`;
    return renderPage(
      'Sign in',
      `<h1>Sign in</h1>
<p>to continue to <strong>${escapeHtml(name)}</strong></p>
${error}
<form method="post" action="/interaction/${uid}/login" novalidate>
<input type="hidden" name="csrf" value="${csrfToken(details.uid)}">
<label for="username">Username</label>
<input type="text" id="username" name="username" autocomplete="username" autocapitalize="none" spellcheck="false" required value="${escapeHtml(options.username ?? '')}"${options.username === undefined ? ' autofocus' : ''}>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required${options.username === undefined ? '' : ' autofocus'}>
<button type="submit">Sign in</button>
</form>`,
      redirectOrigins(details),
    );
  }

  function consentPage(details: Details, name: string): RenderedPage {
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
<p><strong>${escapeHtml(name)}</strong> is asking to:</p>
${list}
<form method="post" action="/interaction/${escapeHtml(details.uid)}/consent">
<input type="hidden" name="csrf" value="${csrfToken(details.uid)}">
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny" class="secondary">Deny</button>
</form>`,
      redirectOrigins(details),
    );
  }

  const expired = (res: Response) =>
    send(
      res,
      400,
      renderPage('Sign-in expired', '<h1>This sign-in has expired</h1><p>Go back to the application and start again.</p>'),
    );

  async function details(req: Request, res: Response): Promise<Details | undefined> {
    try {
      const found = await provider().interactionDetails(req, res);
      return found.uid === req.params['uid'] ? found : undefined;
    } catch {
      return undefined;
    }
  }

  router.get('/interaction/:uid', async (req, res) => {
    const found = await details(req, res);
    if (found === undefined) return expired(res);
    const name = await clientName(found.params['client_id']);
    if (found.prompt.name === 'login') return send(res, 200, loginPage(found, name));
    if (found.prompt.name === 'consent') return send(res, 200, consentPage(found, name));
    return expired(res);
  });

  router.post('/interaction/:uid/login', form, async (req, res) => {
    const found = await details(req, res);
    if (found === undefined || found.prompt.name !== 'login') return expired(res);
    const name = await clientName(found.params['client_id']);
    const body = req.body as Record<string, unknown>;
    if (!csrfValid(found.uid, body['csrf'])) {
      return send(res, 403, loginPage(found, name, { error: 'The form expired. Please sign in again.' }));
    }
    const username = typeof body['username'] === 'string' ? body['username'] : '';
    const password = typeof body['password'] === 'string' ? body['password'] : '';
    const clientId = typeof found.params['client_id'] === 'string' ? found.params['client_id'] : undefined;
    const result = await signIn(stores, hasher, { username, password, ip: req.ip ?? '', clientId });
    metrics.signIns.inc({ outcome: result.outcome });
    if (result.outcome === 'throttled') {
      res.setHeader('Retry-After', String(result.retryAfterSeconds));
      const minutes = Math.ceil(result.retryAfterSeconds / 60);
      return send(res, 429, loginPage(found, name, { username, error: `Too many failed attempts. Try again in ${minutes} minute${minutes === 1 ? '' : 's'}.` }));
    }
    if (result.outcome === 'invalid') {
      return send(res, 401, loginPage(found, name, { username, error: 'Invalid username or password.' }));
    }
    // 303: the browser follows with a GET and never re-posts the credentials (S10)
    await provider().interactionFinished(req, res, { login: { accountId: result.user.id } }, { mergeWithLastSubmission: false });
  });

  router.post('/interaction/:uid/consent', form, async (req, res) => {
    const found = await details(req, res);
    if (found === undefined || found.prompt.name !== 'consent') return expired(res);
    const body = req.body as Record<string, unknown>;
    if (!csrfValid(found.uid, body['csrf'])) return send(res, 403, consentPage(found, await clientName(found.params['client_id'])));
    if (body['decision'] !== 'allow') {
      await provider().interactionFinished(req, res, { error: 'access_denied', error_description: 'the user denied access' }, { mergeWithLastSubmission: false });
      return;
    }
    const accountId = found.session?.accountId;
    const clientId = found.params['client_id'];
    if (accountId === undefined || typeof clientId !== 'string') return expired(res);
    const { Grant } = provider();
    const grant = (found.grantId === undefined ? undefined : await Grant.find(found.grantId)) ?? new Grant({ accountId, clientId });
    const prompt = found.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
    if (prompt.missingOIDCScope !== undefined) grant.addOIDCScope(prompt.missingOIDCScope.join(' '));
    if (prompt.missingOIDCClaims !== undefined) grant.addOIDCClaims(prompt.missingOIDCClaims);
    for (const [resource, scopes] of Object.entries(prompt.missingResourceScopes ?? {})) grant.addResourceScope(resource, scopes.join(' '));
    const grantId = await grant.save();
    logger.info({ client_id: clientId }, 'consent granted');
    await provider().interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  });

  return router;
}
