import type { Request, RequestHandler, Response } from 'express';
import type { Client } from 'oidc-provider';

import { parseCursor, readFeed, type RevocationStore } from '../domain/revocations.js';
import { registeredResources } from '../oidc/client-metadata.js';
import { errorBody, sendError } from '../oidc/errors.js';

/** Where resource services read revocations (the contract's path). */
export const REVOCATION_FEED_PATH = '/token/revocations';

export interface RevocationFeedDependencies {
  readonly issuer: string;
  readonly revocations: RevocationStore;
  /** The engine's client lookup (validated clients, through Sigil's client cache). */
  readonly findClient: (id: string) => Promise<Client | undefined>;
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
 * The calling client, when it authenticates with its secret in HTTP Basic: a confidential
 * client (a public one has no secret to present), compared by the engine's own
 * `compareClientSecret` (client-authentication.ts: constant time).
 */
async function authenticatedClient(req: Request, findClient: RevocationFeedDependencies['findClient']): Promise<Client | undefined> {
  const credentials = basicCredentials(req.get('authorization'));
  if (credentials === undefined) return undefined;
  const client = await findClient(credentials.id);
  if (client === undefined || !SECRET_METHODS.has(client.clientAuthMethod ?? '')) return undefined;
  return (await client.compareClientSecret(credentials.secret)) ? client : undefined;
}

function refuseClient(res: Response, issuer: string): void {
  // RFC 6749 §5.2: 401 with the challenge of the scheme the client should use
  res.setHeader('WWW-Authenticate', `Basic realm="${issuer.replace(/["\\]/gu, '')}"`);
  res.setHeader('Cache-Control', 'no-store');
  sendError(res, 401, errorBody('invalid_client', 'client authentication failed'));
}

/**
 * `GET /token/revocations?since=<cursor>`: the revoked JWT access tokens (`jti`), ended grants
 * (`grant_id`) and revoked clients (`client_id` with `revoked_at`: their tokens issued up to
 * then) whose access tokens for the calling client's registered audiences may still be
 * unexpired, after `since`, and the cursor to ask with next (README#revocation-feed).
 * Only a confidential client authenticating with HTTP Basic may read it.
 */
export function revocationFeed({ issuer, revocations, findClient }: RevocationFeedDependencies): RequestHandler {
  return async (req, res) => {
    const client = await authenticatedClient(req, findClient);
    if (client === undefined) {
      refuseClient(res, issuer);
      return;
    }
    const since: unknown = req.query['since'];
    const cursor = since === undefined || typeof since === 'string' ? parseCursor(since) : undefined;
    res.setHeader('Cache-Control', 'no-store');
    if (cursor === undefined) {
      sendError(res, 400, errorBody('invalid_request', 'since must be a next_cursor this endpoint answered'));
      return;
    }
    res.json(await readFeed(revocations, registeredResources(client), cursor));
  };
}
