import { z } from 'zod';

import type { ApiKeyRecord } from '../domain/api-keys.js';
import type { AuditRecord } from '../domain/audit.js';
import { CLIENT_AUTH_METHODS, type ClientRecord } from '../domain/clients.js';
import type { UserRecord } from '../domain/users.js';

/**
 * How the admin commands show what they read and change: snake_case JSON, the same for the
 * CLI's `--json`, the admin socket and the HTTP admin API. Each view has its schema beside it:
 * the view functions are typed by them, and the admin API's OpenAPI document is generated from
 * them (admin/http/openapi.ts), so what is documented is what is sent. No view holds a secret,
 * a hash or key material.
 */

/*
 * Field names: the commands' inputs are camelCase (`redirectUris`), their views and the admin
 * API's wire format snake_case (`redirect_uris`); one mechanical rule maps between them, and
 * `scope`, a space-separated string on the wire as in every view and in OAuth, is the
 * commands' `scopes` list.
 */

/** Wire fields whose command field is not their camelCase form. */
const RENAMED: Readonly<Record<string, string>> = { scope: 'scopes' };
export const RENAMED_BACK: Readonly<Record<string, string>> = Object.fromEntries(Object.entries(RENAMED).map(([wire, field]) => [field, wire]));

/** The command field of wire field `name` (`redirect_uris` → `redirectUris`, `scope` → `scopes`). */
export function commandField(name: string): string {
  return Object.hasOwn(RENAMED, name) ? String(RENAMED[name]) : name.replace(/_([a-z0-9])/gu, (_match, letter: string) => letter.toUpperCase());
}

/** The wire name of command field `field` (`redirectUris` → `redirect_uris`, `scopes` → `scope`). */
export function wireName(field: string): string {
  return Object.hasOwn(RENAMED_BACK, field) ? String(RENAMED_BACK[field]) : field.replace(/[A-Z]/gu, (letter) => `_${letter.toLowerCase()}`);
}

const timestamp = z.iso.datetime({ offset: true });
const nullableTimestamp = timestamp.nullable();
const iso = (value: Date | null) => (value === null ? null : value.toISOString());

export const clientViewSchema = z
  .object({
    client_id: z.string(),
    name: z.string(),
    grants: z.array(z.string()),
    scope: z.string().describe('space-separated'),
    roles: z.array(z.string()),
    redirect_uris: z.array(z.string()),
    post_logout_redirect_uris: z.array(z.string()).describe('where RP-initiated logout (/session/end) may send the browser back to; none: Sigil\'s signed-out page'),
    resources: z.array(z.string()),
    public: z.boolean(),
    first_party: z.boolean(),
    access_token_ttl: z.number().int().nullable().describe("seconds; null: the issuer's ACCESS_TOKEN_TTL"),
    require_dpop: z.boolean().describe('token requests need a DPoP proof (RFC 9449): its tokens are bound to the client\'s key'),
    may_exchange_for: z.array(z.string()).describe('resources it may exchange the tokens sent to its resources for (RFC 8693 token exchange)'),
    disabled: z.boolean(),
    disabled_at: nullableTimestamp,
    secret_rotated_at: nullableTimestamp,
    previous_secret_expires_at: nullableTimestamp.describe('the secret the last rotation replaced is accepted until then; null: it is not'),
    auth: z.enum(CLIENT_AUTH_METHODS).nullable().describe('how it authenticates; null: its secret, by client_secret_basic or client_secret_post (a public client: none)'),
    has_secret: z.boolean().describe('whether it holds a secret (a client switched back from private_key_jwt has none until rotate-secret)'),
    jwks_uri: z.string().nullable().describe('where its public keys are fetched from (private_key_jwt)'),
    jwks_kids: z.array(z.string()).describe('the kids of its inline public keys (private_key_jwt); the keys themselves are not shown'),
    created_at: timestamp,
  })
  .strict();

export type ClientView = z.infer<typeof clientViewSchema>;

export function clientView(client: ClientRecord): ClientView {
  return {
    client_id: client.id,
    name: client.name,
    grants: [...client.grants],
    scope: client.scopes.join(' '),
    roles: [...client.roles],
    redirect_uris: [...client.redirectUris],
    post_logout_redirect_uris: [...client.postLogoutRedirectUris],
    resources: [...client.resources],
    public: client.public,
    first_party: client.firstParty,
    access_token_ttl: client.accessTokenTtl,
    require_dpop: client.requireDpop,
    may_exchange_for: [...client.mayExchangeFor],
    disabled: client.disabledAt !== null,
    disabled_at: iso(client.disabledAt),
    secret_rotated_at: iso(client.secretRotatedAt),
    previous_secret_expires_at: iso(client.previousSecretExpiresAt),
    auth: client.auth,
    has_secret: client.hasSecret,
    jwks_uri: client.jwksUri,
    jwks_kids: client.jwks === null ? [] : client.jwks.keys.map((key) => key.kid),
    created_at: client.createdAt.toISOString(),
  };
}

export const apiKeyViewSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    owner: z.string().nullable(),
    scope: z.string().describe('space-separated'),
    roles: z.array(z.string()),
    resources: z.array(z.string()),
    needs_resources: z.boolean().describe('a key from before keys named their services: refused everywhere until given resources'),
    expires_at: nullableTimestamp,
    last_used_at: nullableTimestamp,
    revoked_at: nullableTimestamp,
    created_at: timestamp,
  })
  .strict();

export type ApiKeyView = z.infer<typeof apiKeyViewSchema>;

export function apiKeyView(apiKey: ApiKeyRecord): ApiKeyView {
  return {
    id: apiKey.id,
    name: apiKey.name,
    owner: apiKey.owner,
    scope: apiKey.scopes.join(' '),
    roles: [...apiKey.roles],
    resources: [...apiKey.resources],
    needs_resources: apiKey.resources.length === 0,
    expires_at: iso(apiKey.expiresAt),
    last_used_at: iso(apiKey.lastUsedAt),
    revoked_at: iso(apiKey.revokedAt),
    created_at: apiKey.createdAt.toISOString(),
  };
}

export const userViewSchema = z
  .object({
    id: z.uuid(),
    username: z.string(),
    email: z.string().nullable(),
    roles: z.array(z.string()),
    disabled: z.boolean(),
    created_at: timestamp,
  })
  .strict();

export type UserView = z.infer<typeof userViewSchema>;

export function userView(user: UserRecord): UserView {
  return {
    id: user.id,
    username: user.username,
    email: user.email,
    roles: [...user.roles],
    disabled: user.disabled,
    created_at: user.createdAt.toISOString(),
  };
}

export const auditEventViewSchema = z
  .object({
    id: z.string().describe('increasing in the order of writing'),
    type: z.string(),
    at: timestamp,
    actor: z.string().nullable().describe('who ran an admin command: an admin client id, or "cli"; null for sign-in events'),
    object: z.string().nullable(),
    user_id: z.string().nullable(),
    username: z.string().nullable(),
    client_id: z.string().nullable(),
    ip: z.string().nullable(),
    detail: z.record(z.string(), z.unknown()).nullable(),
  })
  .strict();

export type AuditEventView = z.infer<typeof auditEventViewSchema>;

export function auditEventView(event: AuditRecord): AuditEventView {
  return {
    id: event.id,
    type: event.type,
    at: event.at.toISOString(),
    actor: event.actor,
    object: event.object,
    user_id: event.userId,
    username: event.username,
    client_id: event.clientId,
    ip: event.ip,
    detail: event.detail,
  };
}

/** Where the next page of a list starts (pass it as `cursor`); null on the last page. */
export const nextCursorSchema = z.string().nullable().describe('pass as `cursor` for the next page; null on the last page');
