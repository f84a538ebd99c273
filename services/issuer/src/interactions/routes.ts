import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type Provider from 'oidc-provider';

import type { PasswordHasher } from '../domain/passwords.js';
import { signIn, type SignInStores } from '../domain/sign-in.js';
import type { Logger } from '../logger.js';
import { sendErrorPage } from '../oidc/error-page.js';
import type { IssuerMetrics } from '../metrics.js';
import { isDatabaseUnavailable } from '../storage/unavailable.js';
import { csrfTokens, type CsrfTokens } from './csrf.js';
import type { RenderedPage } from './layout.js';
import { consentPage, expiredPage, loginPage, type InteractionDetails } from './pages.js';

export interface InteractionDependencies {
  readonly provider: () => Provider;
  readonly stores: SignInStores;
  readonly hasher: PasswordHasher;
  readonly metrics: IssuerMetrics;
  readonly cookieKeys: readonly string[];
  readonly logger: Logger;
}

function send(res: Response, status: number, page: RenderedPage): void {
  res.status(status);
  res.setHeader('Content-Security-Policy', page.csp);
  res.setHeader('Cache-Control', 'no-store');
  res.type('html').send(page.html);
}

const expired = (res: Response) => send(res, 400, expiredPage());

const refused = (res: Response, description: string) => sendErrorPage(res, 400, 'invalid_request', description);

/**
 * The forms' body parser, which only lets a form through: any other content type, or a form
 * the parser refuses (too large, too many fields), is a 400 page, so the handlers always
 * find `req.body` to be an object of fields.
 */
function formBody(): (req: Request, res: Response, next: NextFunction) => void {
  const parse = express.urlencoded({ extended: false, limit: '8kb', parameterLimit: 20 });
  return (req, res, next) => {
    if (req.is('application/x-www-form-urlencoded') === false) return refused(res, 'the form must be sent as application/x-www-form-urlencoded');
    parse(req, res, (error?: unknown) => {
      if (error !== undefined) return refused(res, 'the form could not be read');
      if (typeof req.body !== 'object' || req.body === null || Buffer.isBuffer(req.body)) req.body = {};
      return next();
    });
    return undefined;
  };
}

/** What every handler needs: the engine, the CSRF tokens and the client's display name. */
interface Interactions {
  readonly provider: () => Provider;
  readonly csrf: CsrfTokens;
  /** The interaction of `req`, or undefined when it is unknown, expired or not the one in the path. */
  details(req: Request, res: Response): Promise<InteractionDetails | undefined>;
  clientName(clientId: unknown): Promise<string>;
}

function interactions(provider: () => Provider, cookieKeys: readonly string[]): Interactions {
  return {
    provider,
    csrf: csrfTokens(cookieKeys),
    async details(req, res) {
      try {
        const found = await provider().interactionDetails(req, res);
        return found.uid === req.params['uid'] ? found : undefined;
      } catch (error) {
        // an outage is not an expired sign-in: the error handler answers it (503)
        if (isDatabaseUnavailable(error)) throw error;
        return undefined;
      }
    },
    async clientName(clientId) {
      const client = typeof clientId === 'string' ? await provider().Client.find(clientId) : undefined;
      return client?.clientName ?? (typeof clientId === 'string' ? clientId : 'an application');
    },
  };
}

/** POST of the login form: the sign-in use case, then back to the engine with a 303 (RFC 9700 §4.12). */
function login(it: Interactions, { stores, hasher, metrics }: InteractionDependencies) {
  return async (req: Request, res: Response) => {
    const found = await it.details(req, res);
    if (found === undefined || found.prompt.name !== 'login') return expired(res);
    const name = await it.clientName(found.params['client_id']);
    const csrf = it.csrf.token(found.uid);
    const body = req.body as Record<string, unknown>;
    if (!it.csrf.valid(found.uid, body['csrf'])) {
      return send(res, 403, loginPage(found, name, csrf, { error: 'The form expired. Please sign in again.' }));
    }
    const username = typeof body['username'] === 'string' ? body['username'] : '';
    const password = typeof body['password'] === 'string' ? body['password'] : '';
    const clientId = typeof found.params['client_id'] === 'string' ? found.params['client_id'] : undefined;
    const result = await signIn(stores, hasher, { username, password, ip: req.ip ?? '', clientId });
    metrics.signIns.inc({ outcome: result.outcome });
    if (result.outcome === 'throttled') {
      res.setHeader('Retry-After', String(result.retryAfterSeconds));
      const minutes = Math.ceil(result.retryAfterSeconds / 60);
      const error = result.reason === 'in_flight' ? 'Too many sign-ins for this account at once. Please try again in a moment.' : `Too many failed attempts. Try again in ${minutes} minute${minutes === 1 ? '' : 's'}.`;
      return send(res, 429, loginPage(found, name, csrf, { username, error }));
    }
    if (result.outcome === 'unavailable') {
      res.setHeader('Retry-After', String(result.retryAfterSeconds));
      return send(res, 503, loginPage(found, name, csrf, { username, error: 'Too many sign-ins at once. Please try again in a moment.' }));
    }
    if (result.outcome === 'invalid') {
      return send(res, 401, loginPage(found, name, csrf, { username, error: 'Invalid username or password.' }));
    }
    // 303: the browser follows with a GET and never re-posts the credentials
    await it.provider().interactionFinished(req, res, { login: { accountId: result.user.id } }, { mergeWithLastSubmission: false });
  };
}

/** POST of the consent form: the grant gets what the user allowed, or the request ends with access_denied. */
function consent(it: Interactions, logger: Logger) {
  return async (req: Request, res: Response) => {
    const found = await it.details(req, res);
    if (found === undefined || found.prompt.name !== 'consent') return expired(res);
    const body = req.body as Record<string, unknown>;
    if (!it.csrf.valid(found.uid, body['csrf'])) return send(res, 403, consentPage(found, await it.clientName(found.params['client_id']), it.csrf.token(found.uid)));
    if (body['decision'] !== 'allow') {
      await it.provider().interactionFinished(req, res, { error: 'access_denied', error_description: 'the user denied access' }, { mergeWithLastSubmission: false });
      return;
    }
    const accountId = found.session?.accountId;
    const clientId = found.params['client_id'];
    if (accountId === undefined || typeof clientId !== 'string') return expired(res);
    const { Grant } = it.provider();
    const grant = (found.grantId === undefined ? undefined : await Grant.find(found.grantId)) ?? new Grant({ accountId, clientId });
    const prompt = found.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
    if (prompt.missingOIDCScope !== undefined) grant.addOIDCScope(prompt.missingOIDCScope.join(' '));
    if (prompt.missingOIDCClaims !== undefined) grant.addOIDCClaims(prompt.missingOIDCClaims);
    for (const [resource, scopes] of Object.entries(prompt.missingResourceScopes ?? {})) grant.addResourceScope(resource, scopes.join(' '));
    const grantId = await grant.save();
    logger.info({ client_id: clientId }, 'consent granted');
    await it.provider().interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  };
}

/**
 * The login and consent pages of the authorization code flow (RFC 9700 §4.12, §4.16):
 * server-rendered, CSRF-protected, never framed, 303 after every POST.
 */
export function interactionRoutes(dependencies: InteractionDependencies): Router {
  const it = interactions(dependencies.provider, dependencies.cookieKeys);
  const router = express.Router();
  const form = formBody();

  router.get('/interaction/:uid', async (req, res) => {
    const found = await it.details(req, res);
    if (found === undefined) return expired(res);
    const name = await it.clientName(found.params['client_id']);
    const csrf = it.csrf.token(found.uid);
    if (found.prompt.name === 'login') return send(res, 200, loginPage(found, name, csrf));
    if (found.prompt.name === 'consent') return send(res, 200, consentPage(found, name, csrf));
    return expired(res);
  });
  router.post('/interaction/:uid/login', form, login(it, dependencies));
  router.post('/interaction/:uid/consent', form, consent(it, dependencies.logger));
  return router;
}
