import type { Client } from 'oidc-provider';

/**
 * Token revocation (RFC 7009 §2.1): a client may revoke only the tokens issued to it. The
 * engine revokes stored tokens (refresh tokens); a revoked refresh token takes its grant, and
 * so every access token of that grant, with it (introspection.ts).
 */
export function revocationAllowed(client: Client, token: { readonly clientId?: string | undefined }): boolean {
  return token.clientId === client.clientId;
}
