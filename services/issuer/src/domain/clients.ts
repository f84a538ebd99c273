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

/** A client as it is first stored; `secretHash` is the SHA-256 of its secret (none for public clients). */
export interface ClientToInsert extends Omit<ClientRecord, 'createdAt'> {
  readonly secretHash: string | null;
}

/** Where registered clients are kept. */
export interface ClientStore {
  insert(client: ClientToInsert): Promise<ClientWithSecret>;
  /** Every client, oldest first. */
  list(): Promise<ClientWithSecret[]>;
  find(id: string): Promise<ClientWithSecret | undefined>;
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
export async function createClient(clients: ClientStore, input: NewClient): Promise<CreatedClient> {
  const client = newClientSchema.parse(input);
  const clientSecret = client.public ? undefined : generateSecret();
  const stored = await clients.insert({
    id: generateId(),
    name: client.name,
    secretHash: clientSecret === undefined ? null : hashSecret(clientSecret),
    grants: client.grants,
    scopes: client.scopes,
    roles: client.roles,
    redirectUris: client.redirectUris,
    resources: client.resources,
    public: client.public,
    firstParty: client.firstParty,
  });
  return { client: withoutSecret(stored), clientSecret };
}

export async function listClients(clients: ClientStore): Promise<ClientRecord[]> {
  return (await clients.list()).map(withoutSecret);
}
