import { z } from 'zod';

import type { Page, PageQuery } from './pages.js';
import { generateId, generateSecret, hashSecret, secretMatches } from './secrets.js';
import { resourceUri, roleList, scopeList } from './validation.js';

/**
 * `sgk_` + a 128-bit lookup id (hex) + `_` + a 256-bit secret (base64url). The prefix makes
 * leaked keys easy to recognise (secret scanners); the id finds the row without a scan.
 */
const API_KEY = /^sgk_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$/u;
const MAX_EXPIRES_IN = 10 * 365 * 24 * 3600;

export function looksLikeApiKey(value: string): boolean {
  return value.startsWith('sgk_');
}

/**
 * The services that accept a key: their audiences (RFC 8707 resource URIs, validated as a
 * client's are). At least one: a key with none is refused everywhere.
 */
const apiKeyResources = z
  .array(resourceUri)
  .min(1, 'an API key needs at least one --resource (the audience of each service that accepts it)')
  .max(20)
  .transform((resources) => [...new Set(resources)]);

/**
 * Scopes the issuer keeps for itself (the admin API's `sigil:admin`, `sigil:read`): a key is
 * never accepted by the admin API, and carrying one would only mislead a service.
 */
const RESERVED_SCOPE_PREFIX = 'sigil:';

export const newApiKeySchema = z
  .object({
    name: z.string().trim().min(1, 'a name is required').max(200, 'a name is at most 200 characters'),
    owner: z.string().trim().min(1).max(200).optional(),
    scopes: scopeList
      .refine((scopes) => !scopes.some((scope) => scope.startsWith(RESERVED_SCOPE_PREFIX)), `scopes beginning with "${RESERVED_SCOPE_PREFIX}" are the issuer's own (the admin API takes tokens, not API keys)`)
      .default([]),
    resources: apiKeyResources,
    roles: roleList.default([]),
    expiresIn: z
      .number({ error: '--expires-in must be a number of seconds' })
      .int('--expires-in must be a whole number of seconds')
      .min(60, '--expires-in must be at least 60 seconds')
      .max(MAX_EXPIRES_IN, `--expires-in must be at most ${MAX_EXPIRES_IN} seconds (10 years)`)
      .optional(),
  })
  .strict();

export type NewApiKey = z.input<typeof newApiKeySchema>;

/** `api-keys update`: the key's resources, replacing the ones it had. */
export const apiKeyUpdateSchema = z
  .object({
    id: z.string().regex(/^[0-9a-f]{32}$/u, 'an API key id is 32 hexadecimal characters'),
    resources: apiKeyResources,
  })
  .strict();

export interface ApiKeyRecord {
  readonly id: string;
  readonly name: string;
  readonly owner: string | null;
  readonly scopes: readonly string[];
  readonly roles: readonly string[];
  /** The audiences of the services that accept the key; empty for a key made before keys had them. */
  readonly resources: readonly string[];
  readonly expiresAt: Date | null;
  readonly lastUsedAt: Date | null;
  readonly revokedAt: Date | null;
  readonly createdAt: Date;
}

/** A stored key with the digest of its secret; only authentication reads this. */
export interface ApiKeyWithSecret extends ApiKeyRecord {
  readonly secretHash: string;
}

/** A key as it is first stored. */
export interface ApiKeyToInsert {
  readonly id: string;
  readonly name: string;
  readonly owner: string | null;
  readonly secretHash: string;
  readonly scopes: readonly string[];
  readonly roles: readonly string[];
  readonly resources: readonly string[];
  readonly expiresAt: Date | null;
}

/** Where API keys are kept. */
export interface ApiKeyStore {
  insert(apiKey: ApiKeyToInsert): Promise<ApiKeyRecord>;
  /** Every key, oldest first. */
  list(): Promise<ApiKeyRecord[]>;
  /** A page of {@link ApiKeyStore.list}'s order. */
  page(query: PageQuery): Promise<Page<ApiKeyRecord>>;
  /** Locks the key's row until the end of the caller's transaction. @returns whether there is one */
  lock(id: string): Promise<boolean>;
  /** Marks the key revoked (keeping the first revocation time); undefined: no such key. */
  revoke(id: string): Promise<ApiKeyRecord | undefined>;
  /** Replaces the key's resources; undefined: no such key. */
  setResources(id: string, resources: readonly string[]): Promise<ApiKeyRecord | undefined>;
  /** Replaces the digest of an unrevoked key's secret; undefined: no such key, or it is revoked. */
  replaceSecret(id: string, secretHash: string): Promise<ApiKeyRecord | undefined>;
  find(id: string): Promise<ApiKeyWithSecret | undefined>;
  /**
   * Stamps `last_used_at` with the database's clock, unless it was stamped less than a minute
   * ago (one conditional statement, so busy keys and many replicas cost one write a minute).
   * True when the row was written.
   */
  recordUse(id: string): Promise<boolean>;
}

/** Creates an API key; the key is returned once and only the secret's SHA-256 is stored. */
export async function createApiKey(apiKeys: ApiKeyStore, input: NewApiKey): Promise<{ record: ApiKeyRecord; key: string }> {
  const apiKey = newApiKeySchema.parse(input);
  const id = generateId();
  const secret = generateSecret();
  const record = await apiKeys.insert({
    id,
    name: apiKey.name,
    owner: apiKey.owner ?? null,
    secretHash: hashSecret(secret),
    scopes: apiKey.scopes,
    roles: apiKey.roles,
    resources: apiKey.resources,
    expiresAt: apiKey.expiresIn === undefined ? null : new Date(Date.now() + apiKey.expiresIn * 1000),
  });
  return { record, key: `sgk_${id}_${secret}` };
}

/**
 * Gives an unrevoked key a new value: a new secret under the same id, with the same name,
 * services, scopes, roles and expiry. The old value is refused by introspection at once (a
 * resource service may still accept it from its cache for up to its positive TTL, 30 s by
 * default). Undefined: no such key, or it is revoked.
 */
export async function rotateApiKey(apiKeys: ApiKeyStore, id: string): Promise<{ record: ApiKeyRecord; key: string } | undefined> {
  const secret = generateSecret();
  const record = await apiKeys.replaceSecret(id, hashSecret(secret));
  return record === undefined ? undefined : { record, key: `sgk_${id}_${secret}` };
}

/**
 * Resolves a presented key to its record when it is genuine, unrevoked and unexpired. Every
 * failure looks the same to the caller; the secret is compared in constant time. Its use is
 * not recorded here: only an answer that vouches for the key does that ({@link ApiKeyStore.recordUse}).
 */
export async function authenticateApiKey(apiKeys: ApiKeyStore, presented: string, now: Date = new Date()): Promise<ApiKeyRecord | undefined> {
  const match = API_KEY.exec(presented);
  if (match === null) return undefined;
  const [, id = '', secret = ''] = match;
  const stored = await apiKeys.find(id);
  if (stored === undefined || !secretMatches(secret, stored.secretHash)) return undefined;
  if (stored.revokedAt !== null || (stored.expiresAt !== null && stored.expiresAt <= now)) return undefined;
  const { secretHash: _secretHash, ...record } = stored;
  return record;
}
