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
 * when there is one, up to the engine's answer once the user is signed in: a redirect to the
 * client, or the form_post page (`response_mode=form_post` in `parameters`). Answers that answer
 * and the PKCE verifier and state of the request.
 * @throws when a step before it does not answer as a browser would expect
 */
export async function authorizeWithoutBrowser(issuer: string, flow: BrowserlessSignIn): Promise<{ answer: RawResponse; codeVerifier: string; state: string }> {
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
  /** One page of the interaction: its form posted (with the page's CSRF token), and the redirect followed back to /auth: the engine's answer there. */
  const submit = async (interaction: string, action: 'login' | 'consent', fields: Record<string, string>) => {
    const page = await step(interaction);
    const csrf = /name="csrf" value="([^"]+)"/u.exec(page.body)?.[1];
    if (csrf === undefined) throw new Error(`${action} page: no CSRF token (${page.status})`);
    const posted = await step(`${new URL(interaction, issuer).pathname}/${action}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf, ...fields }).toString(),
    });
    return step(location(posted, action));
  };

  let answer = await submit(location(await step(`/auth?${authorization.toString()}`), 'authorization request'), 'login', { username: flow.username, password: flow.password });
  // a native app (a public client with a loopback redirect URI) is asked for consent every time, first-party or not
  const consent = answer.headers['location'];
  if (answer.status === 303 && consent !== undefined && new URL(consent, issuer).pathname.startsWith('/interaction/')) answer = await submit(consent, 'consent', { decision: 'allow' });
  return { answer, codeVerifier, state };
}

/**
 * `authorizeWithoutBrowser` for a redirect back to the client: answers the URL the browser
 * lands on at the client (with `code`, `state` and `iss`) and the PKCE verifier to redeem the code.
 * @throws when a step does not answer as a browser would expect
 */
export async function signInWithoutBrowser(issuer: string, flow: BrowserlessSignIn): Promise<{ callbackUrl: URL; codeVerifier: string; state: string }> {
  const { answer, codeVerifier, state } = await authorizeWithoutBrowser(issuer, flow);
  const callback = answer.headers['location'];
  if (answer.status !== 303 || callback === undefined) throw new Error(`authorization resumed: expected a 303 redirect, got ${answer.status} ${answer.body.slice(0, 200)}`);
  if (!callback.startsWith(`${flow.redirectUri}?`)) throw new Error(`authorization: sent to ${callback}, not the client`);
  return { callbackUrl: new URL(callback), codeVerifier, state };
}
