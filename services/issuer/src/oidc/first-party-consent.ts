import type { KoaContextWithOIDC } from 'oidc-provider';

import { isFirstParty } from './client-metadata.js';

/**
 * The grant an authorization request runs under (the engine's `loadExistingGrant`).
 * First-party clients (`--first-party`) are trusted to get what they ask for within their
 * registration, so they never see a consent page; everyone else keeps the grant the user
 * consented to.
 */
export async function loadExistingGrant(ctx: KoaContextWithOIDC) {
  const { client, session, provider } = ctx.oidc;
  if (client === undefined) return undefined;
  const grantId = (ctx.oidc.result?.['consent'] as { grantId?: string } | undefined)?.grantId ?? session?.grantIdFor(client.clientId);
  const existing = grantId === undefined ? undefined : await provider.Grant.find(grantId);
  if (!isFirstParty(client) || session?.accountId === undefined) return existing;
  const grant = existing ?? new provider.Grant({ clientId: client.clientId, accountId: session.accountId });
  grant.addOIDCScope([...ctx.oidc.requestParamOIDCScopes].join(' '));
  for (const [indicator, resourceServer] of Object.entries(ctx.oidc.resourceServers ?? {})) {
    grant.addResourceScope(indicator, [...ctx.oidc.requestParamScopes].filter((scope) => resourceServer.scopes.has(scope)).join(' '));
  }
  await grant.save();
  return grant;
}
