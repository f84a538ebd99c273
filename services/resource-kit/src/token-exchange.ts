import { issuerMetadata } from '@sigil/guard';

/** RFC 8693 §2.1 and §3: the grant, and the one token type Sigil exchanges. */
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

/**
 * @example
 * ```ts
 * createTokenExchanger({ issuer, client: config.guardClient, resource: 'http://localhost:4002' });
 * ```
 */
export interface TokenExchangerOptions {
  /** The issuer's base URL; its token endpoint is found in its metadata (on its own origin only). */
  readonly issuer: string;
  /** This service's own client, registered with the token exchange grant and `--may-exchange-for resource`. */
  readonly client: { readonly clientId: string; readonly clientSecret: string };
  /** The service to call: the `resource` (audience) of the tokens asked for. */
  readonly resource: string;
  /** Timeout of one request to the issuer. Default 5 s. */
  readonly timeoutMs?: number;
}

/** A token for the other service, on behalf of the subject token's person. */
export interface ExchangedToken {
  readonly accessToken: string;
  readonly scope: string | undefined;
  /** Seconds it lives (never longer than the subject token). */
  readonly expiresIn: number;
}

/**
 * Why no token came back: `refusal` is the issuer's RFC 6749 error code when it refused the
 * exchange (`invalid_grant`, `invalid_scope`, `invalid_target`…), undefined when it could not be
 * asked (unreachable, a 5xx, metadata the guard's rules refuse).
 *
 * @example
 * ```ts
 * if (error instanceof TokenExchangeFailed) res.status(error.refusal === undefined ? 503 : 502);
 * ```
 */
export class TokenExchangeFailed extends Error {
  override name = 'TokenExchangeFailed';
  constructor(
    message: string,
    readonly refusal: string | undefined,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The members of a token exchange answer this client relies on (RFC 8693 §2.2.1). */
function exchangedToken(body: unknown): ExchangedToken | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const { access_token: accessToken, issued_token_type: issued, token_type: type, scope, expires_in: expiresIn } = body as Record<string, unknown>;
  if (typeof accessToken !== 'string' || issued !== ACCESS_TOKEN_TYPE || typeof type !== 'string' || type.toLowerCase() !== 'bearer') return undefined;
  return { accessToken, scope: typeof scope === 'string' ? scope : undefined, expiresIn: typeof expiresIn === 'number' ? expiresIn : 0 };
}

/**
 * Exchanges the access tokens a service is sent for tokens for another service it calls on the
 * caller's behalf (RFC 8693 delegation): authenticated as the service's own client (HTTP Basic,
 * RFC 6749 §2.3.1), at the token endpoint the issuer's metadata names, which must be on the
 * issuer's origin as the guard requires of every endpoint it sends a secret to. Each call is
 * one exchange: the other service's token names this service in `act`.
 *
 * @example
 * ```ts
 * const reports = createTokenExchanger({ issuer, client, resource: 'http://localhost:4002' });
 * const { accessToken } = await reports.exchange(incomingToken);
 * await fetch('http://localhost:4002/reports', { headers: { authorization: `Bearer ${accessToken}` } });
 * ```
 */
export function createTokenExchanger(options: TokenExchangerOptions): { exchange(subjectToken: string, scope?: string): Promise<ExchangedToken> } {
  const { issuer, client, resource, timeoutMs = 5000 } = options;
  const metadata = issuerMetadata(issuer, { timeoutMs });
  const authorization = `Basic ${Buffer.from(`${encodeURIComponent(client.clientId)}:${encodeURIComponent(client.clientSecret)}`).toString('base64')}`;

  async function tokenEndpoint(): Promise<string> {
    let endpoint: string | undefined;
    try {
      endpoint = (await metadata()).token_endpoint;
    } catch (error) {
      throw new TokenExchangeFailed('issuer metadata unavailable', undefined, { cause: error });
    }
    if (endpoint === undefined) throw new TokenExchangeFailed('issuer metadata has no token_endpoint', undefined);
    return endpoint;
  }

  return {
    async exchange(subjectToken, scope) {
      const form = new URLSearchParams({ grant_type: TOKEN_EXCHANGE, subject_token: subjectToken, subject_token_type: ACCESS_TOKEN_TYPE, resource });
      if (scope !== undefined) form.set('scope', scope);
      let response: Response;
      try {
        response = await fetch(await tokenEndpoint(), { method: 'POST', headers: { authorization, accept: 'application/json' }, body: form, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
      } catch (error) {
        if (error instanceof TokenExchangeFailed) throw error;
        throw new TokenExchangeFailed('issuer unreachable', undefined, { cause: error });
      }
      const body: unknown = await response.json().catch(() => undefined);
      if (response.status >= 400 && response.status < 500) {
        const code = (body as { error?: unknown } | undefined)?.error;
        throw new TokenExchangeFailed(`issuer refused the token exchange (${response.status})`, typeof code === 'string' ? code : 'invalid_request');
      }
      const exchanged = response.status === 200 ? exchangedToken(body) : undefined;
      if (exchanged === undefined) throw new TokenExchangeFailed(`issuer answered the token exchange with ${response.status}`, undefined);
      return exchanged;
    },
  };
}
