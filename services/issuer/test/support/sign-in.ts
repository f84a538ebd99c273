import { createHash, randomBytes } from 'node:crypto';

import { request, type RawResponse } from './http.js';

/** The cookies a browser keeps between the steps of a sign-in (name → value). */
class CookieJar {
  readonly #cookies = new Map<string, string>();

  keep(response: RawResponse): void {
    for (const line of response.headers['set-cookie'] ?? []) {
      const [pair = ''] = line.split(';');
      const equals = pair.indexOf('=');
      this.#cookies.set(pair.slice(0, equals), pair.slice(equals + 1));
    }
  }

  get header(): string {
    return [...this.#cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }
}

export interface BrowserlessSignIn {
  readonly clientId: string;
  readonly redirectUri: string;
  readonly scope: string;
  readonly username: string;
  readonly password: string;
  /** Further authorization request parameters (`resource`, `dpop_jkt`…). */
  readonly parameters?: Record<string, string>;
}

/**
 * The authorization code flow with PKCE (S256) as a browser runs it, over plain HTTP with a
 * cookie jar: the authorization request, the login page and its form, the consent page (allowed)
 * when there is one, then the redirects back to the client. Answers the URL the browser lands
 * on at the client (with `code`, `state` and `iss`) and the PKCE verifier to redeem the code.
 * @throws when a step does not answer as a browser would expect
 */
export async function signInWithoutBrowser(issuer: string, flow: BrowserlessSignIn): Promise<{ callbackUrl: URL; codeVerifier: string; state: string }> {
  const jar = new CookieJar();
  const step = async (target: string, options: { method?: string; body?: string; headers?: Record<string, string> } = {}) => {
    const url = new URL(target, issuer);
    const response = await request(url.href, { ...options, headers: { ...options.headers, ...(jar.header === '' ? {} : { cookie: jar.header }) } });
    jar.keep(response);
    return response;
  };
  const location = (response: RawResponse, what: string): string => {
    const target = response.headers['location'];
    if (response.status !== 303 || target === undefined) throw new Error(`${what}: expected a 303 redirect, got ${response.status} ${response.body.slice(0, 200)}`);
    return target;
  };

  const codeVerifier = randomBytes(32).toString('base64url');
  const state = randomBytes(16).toString('base64url');
  const authorization = new URLSearchParams({
    client_id: flow.clientId,
    redirect_uri: flow.redirectUri,
    response_type: 'code',
    scope: flow.scope,
    state,
    code_challenge: createHash('sha256').update(codeVerifier).digest('base64url'),
    code_challenge_method: 'S256',
    ...flow.parameters,
  });
  /** One page of the interaction: its form posted (with the page's CSRF token), and the redirect followed back to /auth. */
  const submit = async (interaction: string, action: 'login' | 'consent', fields: Record<string, string>) => {
    const page = await step(interaction);
    const csrf = /name="csrf" value="([^"]+)"/u.exec(page.body)?.[1];
    if (csrf === undefined) throw new Error(`${action} page: no CSRF token (${page.status})`);
    const posted = await step(`${new URL(interaction, issuer).pathname}/${action}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf, ...fields }).toString(),
    });
    return location(await step(location(posted, action)), `authorization resumed after ${action}`);
  };

  let next = await submit(location(await step(`/auth?${authorization.toString()}`), 'authorization request'), 'login', { username: flow.username, password: flow.password });
  // a native app (a public client with a loopback redirect URI) is asked for consent every time, first-party or not
  if (new URL(next, issuer).pathname.startsWith('/interaction/')) next = await submit(next, 'consent', { decision: 'allow' });
  const callback = next;
  if (!callback.startsWith(`${flow.redirectUri}?`)) throw new Error(`authorization: sent to ${callback}, not the client`);
  return { callbackUrl: new URL(callback), codeVerifier, state };
}
