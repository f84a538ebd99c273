import { createClient, type ClientStore, type NewClient } from '../../src/domain/clients.js';
import { basicAuth } from './http.js';

/** A client's id and secret (the secret is '' for a public client). */
export interface Credentials {
  readonly id: string;
  readonly secret: string;
}

/** Registers a client the way the CLI does, and answers the credentials it was given. */
export async function registerClient(clients: ClientStore, input: NewClient): Promise<Credentials> {
  const created = await createClient(clients, input);
  return { id: created.client.id, secret: created.clientSecret ?? '' };
}

/**
 * POST `path` (the token endpoint by default) with a form body, the client authenticating with
 * HTTP Basic (RFC 6749 §2.3.1) when given.
 */
export function postForm(issuerUrl: string, form: Record<string, string>, client?: Credentials, { path = '/token', headers = {} }: { path?: string; headers?: Record<string, string> } = {}): Promise<Response> {
  return fetch(`${issuerUrl}${path}`, {
    method: 'POST',
    headers: { ...(client === undefined ? {} : { authorization: basicAuth(client.id, client.secret) }), ...headers },
    body: new URLSearchParams(form),
  });
}

/** The claims of a JWT, read without verifying it. */
export function claimsOf(jwt: string): Record<string, unknown> {
  const [, payload] = jwt.split('.');
  return JSON.parse(Buffer.from(payload ?? '', 'base64url').toString()) as Record<string, unknown>;
}
