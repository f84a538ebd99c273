import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { decodeJwt } from 'jose';
import type { Client } from 'oidc-provider';

import { parseCursor, readFeed, type RevocationStore } from '../domain/revocations.js';
import { JWT_BEARER_ASSERTION, verifyClientAssertion } from '../oidc/client-assertions.js';
import { assertSecretMethod } from '../oidc/client-authentication.js';
import type { ClientJwksFetcher } from '../oidc/client-jwks.js';
import { registeredResources, type SecretMethod } from '../oidc/client-metadata.js';
import { errorBody, sendError } from '../oidc/errors.js';
import { routes } from '../oidc/routes.js';

/** Where resource services read revocations (the contract's path). */
export const REVOCATION_FEED_PATH = '/token/revocations';

export interface RevocationFeedDependencies {
  readonly issuer: string;
  readonly revocations: RevocationStore;
  /** The engine's client lookup (validated clients, through Sigil's client cache). */
  readonly findClient: (id: string) => Promise<Client | undefined>;
  /** The key sets of private_key_jwt clients with a jwks_uri (the engine's, one per process). */
  readonly jwks: ClientJwksFetcher;
  /** The engine's replay detection (oidc/replay-detection.ts): an assertion's jti is used once, here as on the engine's endpoints. */
  readonly unique: (iss: string, jti: string, exp: number) => Promise<boolean>;
}

/** Client authentication methods of clients that hold a secret, which HTTP Basic can present. */
const SECRET_METHODS: ReadonlySet<string> = new Set(['client_secret_basic', 'client_secret_post']);
/** RFC 6749 §2.3.1: each part form-urlencoded, then `id:secret` in base64. */
const BASIC = /^Basic ([A-Za-z0-9+/]+={0,2})$/iu;

function formDecoded(part: string): string | undefined {
  try {
    return decodeURIComponent(part.replace(/\+/gu, '%20'));
  } catch {
    return undefined;
  }
}

/** The id and secret of an `Authorization: Basic` header, or undefined when there is none or it is malformed. */
function basicCredentials(header: string | undefined): { id: string; secret: string } | undefined {
  const match = header === undefined ? null : BASIC.exec(header);
  if (match === null) return undefined;
  const decoded = Buffer.from(match[1] ?? '', 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  const id = formDecoded(decoded.slice(0, colon));
  const secret = formDecoded(decoded.slice(colon + 1));
  return id === undefined || secret === undefined || id === '' || secret === '' ? undefined : { id, secret };
}

/**
 * The client whose secret `secret` is, presented by `method`: a confidential client (a public
 * one has no secret to present) registered for that way of presenting it, compared by the
 * engine's own `compareClientSecret` (client-authentication.ts: constant time).
 */
async function secretClient(id: string, secret: string, method: SecretMethod, findClient: RevocationFeedDependencies['findClient']): Promise<Client | undefined> {
  const client = await findClient(id);
  if (client === undefined || !SECRET_METHODS.has(client.clientAuthMethod ?? '')) return undefined;
  try {
    assertSecretMethod(client, method);
  } catch {
    return undefined;
  }
  return (await client.compareClientSecret(secret)) ? client : undefined;
}

/** The client a JWT client assertion (RFC 7523 §2.2) authenticates: its `sub` names it, and it must be registered for private_key_jwt. */
async function assertionClient(form: Record<string, unknown>, dependencies: RevocationFeedDependencies): Promise<Client | undefined> {
  const { client_assertion: assertion, client_assertion_type: type, client_id: claimed } = form;
  if (typeof assertion !== 'string' || type !== JWT_BEARER_ASSERTION) return undefined;
  let subject: unknown;
  try {
    subject = decodeJwt(assertion).sub;
  } catch {
    return undefined;
  }
  if (typeof subject !== 'string' || (claimed !== undefined && claimed !== subject)) return undefined;
  const client = await dependencies.findClient(subject);
  const { issuer } = dependencies;
  // RFC 7523 §3 item 3: the issuer, the token endpoint, or this endpoint (as the engine accepts on its own)
  const audiences = [issuer, `${issuer}${routes.token}`, `${issuer}${REVOCATION_FEED_PATH}`];
  return client !== undefined && (await verifyClientAssertion(assertion, client, { audiences, jwks: dependencies.jwks, unique: dependencies.unique })) ? client : undefined;
}

/** The ways a request may authenticate its client; more than one at once is refused (RFC 6749 §2.3). */
type Presented = { readonly by: 'none' | 'several' } | { readonly by: 'basic'; readonly id: string; readonly secret: string } | { readonly by: 'post' | 'assertion'; readonly form: Record<string, unknown> };

function presentedCredentials(req: Request): Presented {
  const form = (req.body ?? {}) as Record<string, unknown>;
  const header = req.get('authorization');
  const ways = [header !== undefined, form['client_secret'] !== undefined, form['client_assertion'] !== undefined].filter(Boolean).length;
  if (ways > 1) return { by: 'several' };
  if (form['client_secret'] !== undefined) return { by: 'post', form };
  if (form['client_assertion'] !== undefined) return { by: 'assertion', form };
  const basic = basicCredentials(header);
  return basic === undefined ? { by: 'none' } : { by: 'basic', ...basic };
}

/**
 * The calling client: a confidential client authenticating by the way it is registered for,
 * HTTP Basic (GET or POST), or in a POST's form its `client_id` and `client_secret` or a
 * JWT client assertion (private_key_jwt, RFC 7523 §2.2: the parameters go in a form body,
 * RFC 7521 §4.2, never in the URL). `several` when more than one way was used at once.
 */
async function authenticatedClient(req: Request, dependencies: RevocationFeedDependencies): Promise<Client | 'several' | undefined> {
  const presented = presentedCredentials(req);
  switch (presented.by) {
    case 'several':
      return 'several';
    case 'basic':
      return secretClient(presented.id, presented.secret, 'client_secret_basic', dependencies.findClient);
    case 'post': {
      const { client_id: id, client_secret: secret } = presented.form;
      return typeof id === 'string' && typeof secret === 'string' && secret !== '' ? secretClient(id, secret, 'client_secret_post', dependencies.findClient) : undefined;
    }
    case 'assertion':
      return assertionClient(presented.form, dependencies);
    case 'none':
      return undefined;
  }
}

const formParser = express.urlencoded({ extended: false, limit: '64kb', parameterLimit: 10 });

/** A POST's form body (client authentication and `since`); any other content type is a 400. A GET has none. */
function readForm(req: Request, res: Response, next: NextFunction): void {
  if (req.method !== 'POST') return next();
  if (req.is('application/x-www-form-urlencoded') !== 'application/x-www-form-urlencoded') {
    sendError(res, 400, errorBody('invalid_request', 'the body must be application/x-www-form-urlencoded'));
    return undefined;
  }
  formParser(req, res, (error?: unknown) => {
    if (error !== undefined) {
      sendError(res, 400, errorBody('invalid_request', 'the form could not be read'));
      return;
    }
    if (typeof req.body !== 'object' || req.body === null || Buffer.isBuffer(req.body)) req.body = {};
    next();
  });
  return undefined;
}

function refuseClient(res: Response, issuer: string): void {
  // RFC 6749 §5.2: 401 with the challenge of the scheme the client should use
  res.setHeader('WWW-Authenticate', `Basic realm="${issuer.replace(/["\\]/gu, '')}"`);
  res.setHeader('Cache-Control', 'no-store');
  sendError(res, 401, errorBody('invalid_client', 'client authentication failed'));
}

/**
 * `GET /token/revocations?since=<cursor>` (or a POST with `since` in its form): the revoked JWT
 * access tokens (`jti`), ended grants (`grant_id`) and revoked clients (`client_id` with
 * `revoked_at`: their tokens issued up to then) whose access tokens for the calling client's
 * registered audiences may still be unexpired, after `since`, and the cursor to ask with next
 * (README#revocation-feed). Only a confidential client may read it, authenticated as
 * `authenticatedClient` says.
 */
export function revocationFeed(dependencies: RevocationFeedDependencies): RequestHandler[] {
  const { issuer, revocations } = dependencies;
  const serve: RequestHandler = async (req, res) => {
    const client = await authenticatedClient(req, dependencies);
    if (client === 'several') {
      res.setHeader('Cache-Control', 'no-store');
      sendError(res, 400, errorBody('invalid_request', 'client authentication must only be provided using one mechanism'));
      return;
    }
    if (client === undefined) {
      refuseClient(res, issuer);
      return;
    }
    const since: unknown = (req.body as Record<string, unknown> | undefined)?.['since'] ?? req.query['since'];
    const cursor = since === undefined || typeof since === 'string' ? parseCursor(since) : undefined;
    res.setHeader('Cache-Control', 'no-store');
    if (cursor === undefined) {
      sendError(res, 400, errorBody('invalid_request', 'since must be a next_cursor this endpoint answered'));
      return;
    }
    res.json(await readFeed(revocations, registeredResources(client), cursor));
  };
  return [readForm, serve];
}
