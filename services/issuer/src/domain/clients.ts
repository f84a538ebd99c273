import type { Knex } from 'knex';
import { z } from 'zod';

import { generateId, generateSecret, hashSecret } from './secrets.js';
import { redirectUri, resourceUri, roleList, scopeList } from './validation.js';

export const GRANT_TYPES = ['client_credentials', 'password', 'authorization_code', 'refresh_token'] as const;
export type GrantType = (typeof GRANT_TYPES)[number];

/** What an administrator asks for when registering a client. */
export const newClientSchema = z
  .object({
    name: z.string().trim().min(1, 'a name is required').max(200, 'a name is at most 200 characters'),
    grants: z
      .array(z.enum(GRANT_TYPES, { error: `a grant is one of ${GRANT_TYPES.join(', ')}` }))
      .min(1, 'at least one --grant is required')
      .transform((grants) => [...new Set(grants)]),
    scopes: scopeList.default([]),
    roles: roleList.default([]),
    redirectUris: z.array(redirectUri).max(20).default([]),
    resources: z.array(resourceUri).max(20).default([]),
    public: z.boolean().default(false),
    firstParty: z.boolean().default(false),
  })
  .strict()
  .superRefine((client, ctx) => {
    const has = (grant: GrantType) => client.grants.includes(grant);
    const problem = (message: string) => ctx.addIssue({ code: 'custom', message });
    if (client.public && (has('client_credentials') || has('password'))) {
      problem('a public client cannot use the client_credentials or password grant (it cannot authenticate)');
    }
    if (has('authorization_code') && client.redirectUris.length === 0) {
      problem('the authorization_code grant needs at least one --redirect-uri');
    }
    if (!has('authorization_code') && client.redirectUris.length > 0) {
      problem('--redirect-uri is only meaningful with the authorization_code grant');
    }
    if (has('refresh_token') && !has('authorization_code') && !has('password')) {
      problem('the refresh_token grant needs the authorization_code or password grant');
    }
    if ((has('client_credentials') || has('password')) && client.resources.length === 0) {
      problem('the client_credentials and password grants need at least one --resource (the audience of its tokens)');
    }
  });

export type NewClient = z.input<typeof newClientSchema>;

export interface ClientRecord {
  readonly id: string;
  readonly name: string;
  readonly grants: readonly GrantType[];
  readonly scopes: readonly string[];
  readonly roles: readonly string[];
  readonly redirectUris: readonly string[];
  readonly resources: readonly string[];
  readonly public: boolean;
  readonly firstParty: boolean;
  readonly createdAt: Date;
}

/** A stored client with its secret digest; only the client authentication path reads this. */
export interface ClientWithSecret extends ClientRecord {
  readonly secretHash: string | null;
}

interface ClientRow {
  id: string;
  name: string;
  secret_hash: string | null;
  grant_types: GrantType[];
  scopes: string[];
  roles: string[];
  redirect_uris: string[];
  resources: string[];
  public: boolean;
  first_party: boolean;
  created_at: Date;
}

function toRecord(row: ClientRow): ClientWithSecret {
  return {
    id: row.id,
    name: row.name,
    secretHash: row.secret_hash,
    grants: row.grant_types,
    scopes: row.scopes,
    roles: row.roles,
    redirectUris: row.redirect_uris,
    resources: row.resources,
    public: row.public,
    firstParty: row.first_party,
    createdAt: new Date(row.created_at),
  };
}

function withoutSecret({ secretHash: _secretHash, ...record }: ClientWithSecret): ClientRecord {
  return record;
}

export interface CreatedClient {
  readonly client: ClientRecord;
  /** Shown once; only its SHA-256 is stored. Undefined for public clients. */
  readonly clientSecret: string | undefined;
}

/** Registers a client. The secret is generated here and never stored in the clear. */
export async function createClient(db: Knex, input: NewClient): Promise<CreatedClient> {
  const client = newClientSchema.parse(input);
  const clientSecret = client.public ? undefined : generateSecret();
  const [row] = await db('clients')
    .insert({
      id: generateId(),
      name: client.name,
      secret_hash: clientSecret === undefined ? null : hashSecret(clientSecret),
      grant_types: JSON.stringify(client.grants),
      scopes: JSON.stringify(client.scopes),
      roles: JSON.stringify(client.roles),
      redirect_uris: JSON.stringify(client.redirectUris),
      resources: JSON.stringify(client.resources),
      public: client.public,
      first_party: client.firstParty,
    })
    .returning<ClientRow[]>('*');
  if (row === undefined) throw new Error('insert returned no row');
  return { client: withoutSecret(toRecord(row)), clientSecret };
}

export async function listClients(db: Knex): Promise<ClientRecord[]> {
  const rows = await db<ClientRow>('clients').select('*').orderBy('created_at').orderBy('id');
  return rows.map((row) => withoutSecret(toRecord(row)));
}

export async function findClientWithSecret(db: Knex, id: string): Promise<ClientWithSecret | undefined> {
  const row = await db<ClientRow>('clients').where({ id }).first();
  return row === undefined ? undefined : toRecord(row);
}
