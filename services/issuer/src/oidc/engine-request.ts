import Provider from 'oidc-provider';

/**
 * The engine's koa context of the token request this code runs in, or `undefined` outside one
 * (another endpoint, the CLI, the sweeper, tests). Per-request state (the read-ahead, a put-off
 * refresh-token consumption) is keyed by it, so nothing outlives or crosses a request; a refresh
 * token is only rotated there, by the refresh_token grant (docs/engine.md#the-request-context).
 */
export function currentTokenRequest(): object | undefined {
  const ctx = Provider.ctx;
  return ctx === undefined || ctx.oidc.route !== 'token' ? undefined : ctx;
}
