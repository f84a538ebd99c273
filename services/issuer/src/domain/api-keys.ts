import type { Knex } from 'knex';
import { z } from 'zod';

import { generateId, generateSecret, hashSecret, secretMatches } from './secrets.js';
import { roleList, scopeList } from './validation.js';

/**
 * `sgk_` + a 128-bit lookup id (hex) + `_` + a 256-bit secret (base64url). The prefix makes
 * leaked keys easy to recognise (secret scanners); the id finds the row without a scan.
 */
const API_KEY = /^sgk_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$/u;
const MAX_EXPIRES_IN = 10 * 365 * 24 * 3600;

export function looksLikeApiKey(value: string): boolean {
  return value.startsWith('sgk_');
}

export const newApiKeySchema = z
  .object({
    name: z.string().trim().min(1, 'a name is required').max(200, 'a name is at most 200 characters'),
    owner: z.string().trim().min(1).max(200).optional(),
    scopes: scopeList.default([]),
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

export interface ApiKeyRecord {
  readonly id: string;
  readonly name: string;
  readonly owner: string | null;
  readonly scopes: readonly string[];
  readonly roles: readonly string[];
  readonly expiresAt: Date | null;
  readonly lastUsedAt: Date | null;
  readonly revokedAt: Date | null;
  readonly createdAt: Date;
}

interface ApiKeyRow {
  id: string;
  name: string;
  owner: string | null;
  secret_hash: string;
  scopes: string[];
  roles: string[];
  expires_at: Date | null;
  last_used_at: Date | null;
  revoked_at: Date | null;
  created_at: Date;
}

const date = (value: Date | null) => (value === null ? null : new Date(value));

function toRecord(row: ApiKeyRow): ApiKeyRecord {
  return {
    id: row.id,
    name: row.name,
    owner: row.owner,
    scopes: row.scopes,
    roles: row.roles,
    expiresAt: date(row.expires_at),
    lastUsedAt: date(row.last_used_at),
    revokedAt: date(row.revoked_at),
    createdAt: new Date(row.created_at),
  };
}

/** Creates an API key; the key is returned once and only the secret's SHA-256 is stored. */
export async function createApiKey(db: Knex, input: NewApiKey): Promise<{ record: ApiKeyRecord; key: string }> {
  const apiKey = newApiKeySchema.parse(input);
  const id = generateId();
  const secret = generateSecret();
  const [row] = await db('api_keys')
    .insert({
      id,
      name: apiKey.name,
      owner: apiKey.owner ?? null,
      secret_hash: hashSecret(secret),
      scopes: JSON.stringify(apiKey.scopes),
      roles: JSON.stringify(apiKey.roles),
      expires_at: apiKey.expiresIn === undefined ? null : new Date(Date.now() + apiKey.expiresIn * 1000),
    })
    .returning<ApiKeyRow[]>('*');
  if (row === undefined) throw new Error('insert returned no row');
  return { record: toRecord(row), key: `sgk_${id}_${secret}` };
}

export async function listApiKeys(db: Knex): Promise<ApiKeyRecord[]> {
  const rows = await db<ApiKeyRow>('api_keys').select('*').orderBy('created_at').orderBy('id');
  return rows.map(toRecord);
}

/**
 * Revokes a key; revoking a revoked key is a no-op.
 * @returns the record, or undefined when no key has that id
 */
export async function revokeApiKey(db: Knex, id: string): Promise<ApiKeyRecord | undefined> {
  const [row] = await db('api_keys')
    .where({ id })
    .update({ revoked_at: db.raw('coalesce(revoked_at, now())') })
    .returning<ApiKeyRow[]>('*');
  return row === undefined ? undefined : toRecord(row);
}

/**
 * Resolves a presented key to its record when it is genuine, unrevoked and unexpired, and
 * records its use. Every failure looks the same to the caller; the secret is compared in
 * constant time.
 */
export async function authenticateApiKey(db: Knex, presented: string, now: Date = new Date()): Promise<ApiKeyRecord | undefined> {
  const match = API_KEY.exec(presented);
  if (match === null) return undefined;
  const [, id = '', secret = ''] = match;
  const row = await db<ApiKeyRow>('api_keys').where({ id }).first();
  if (row === undefined || !secretMatches(secret, row.secret_hash)) return undefined;
  const record = toRecord(row);
  if (record.revokedAt !== null || (record.expiresAt !== null && record.expiresAt <= now)) return undefined;
  await db('api_keys').where({ id }).update({ last_used_at: now });
  return record;
}
