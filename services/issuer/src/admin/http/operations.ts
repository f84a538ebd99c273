import { z } from 'zod';

import { DEFAULT_PAGE_SIZE, type AdminCommandName } from '../commands.js';
import { apiKeyViewSchema, auditEventViewSchema, clientViewSchema, nextCursorSchema, userViewSchema } from '../views.js';
import { keyRotationSchema, keyViewSchema } from '../../keys/commands.js';

/**
 * The admin API, operation by operation: each is one admin command (admin/commands.ts), so
 * the API validates, changes and records exactly what the CLI and the admin socket do. The
 * router (router.ts) serves this table and the OpenAPI document (openapi.ts) describes it.
 */
export interface AdminOperation {
  /** The OpenAPI operationId. */
  readonly id: string;
  readonly method: 'get' | 'post' | 'patch' | 'delete';
  /** Under /admin/v1, with `{param}` path parameters (each one a field of the command's input). */
  readonly path: string;
  readonly command: AdminCommandName;
  readonly summary: string;
  readonly tag: 'clients' | 'users' | 'api-keys' | 'keys' | 'audit-events';
  /** The command's input fields the body may set; none: the body must be empty or `{}`. */
  readonly body?: 'fields';
  /** Fields of the command's input the body may not set, beside the path's (a user's other selector, `username`). */
  readonly bodyOmits?: readonly string[];
  /** Query parameters (wire names), each a field of the command's input. */
  readonly query?: readonly string[];
  /** Input fields the API sets when the caller does not (a list's page size). */
  readonly defaults?: Readonly<Record<string, unknown>>;
  readonly status: 200 | 201;
  readonly response: z.ZodType;
  /**
   * `read`: the answer carries an `ETag` of the object. `write`: an `If-Match` header makes the
   * change conditional (412 when stale) and the answer carries the changed object's `ETag`.
   */
  readonly entity?: 'read' | 'write';
  /** The object in the answer that the `ETag` and `Location` are of, when it is not the whole answer. */
  readonly entityOf?: (result: Record<string, unknown>) => unknown;
  /** For a 201: where the created object is (under /admin/v1). */
  readonly location?: (result: Record<string, unknown>) => string;
  readonly description?: string;
}

/** A list page: its items under `name`, and the cursor of the next page. */
const listOf = (name: string, item: z.ZodType) => z.object({ [name]: z.array(item), next_cursor: nextCursorSchema }).strict();
const PAGE = ['limit', 'cursor'] as const;
/** A page's size when the caller gives no `limit` (the CLI, given none, lists everything). */
const DEFAULT_LIMIT = { limit: DEFAULT_PAGE_SIZE };

const clientCreated = z
  .object({ client_id: z.string(), client_secret: z.string().optional().describe('shown only here; none for a public client'), client: clientViewSchema })
  .strict();
const clientSecret = z.object({ client_id: z.string(), client_secret: z.string().describe('shown only here'), client: clientViewSchema }).strict();
const clientDeleted = clientViewSchema.extend({ deleted: z.literal(true) });
const userCreated = z.object({ id: z.uuid(), username: z.string(), user: userViewSchema }).strict();
const userDeleted = z.object({ id: z.uuid(), username: z.string(), deleted: z.literal(true), grants_revoked: z.literal(true) }).strict();
const userPasswordSet = userViewSchema.extend({ grants_revoked: z.literal(true) });
const apiKeyCreated = z.object({ id: z.string(), key: z.string().describe('shown only here'), api_key: apiKeyViewSchema }).strict();
const keyRetired = z.object({ kid: z.string(), state: z.literal('retired'), retired_at: z.iso.datetime({ offset: true }).optional() }).strict();

const clientOf = (result: Record<string, unknown>) => result['client'];
const ONE = ['id'];

export const ADMIN_OPERATIONS: readonly AdminOperation[] = [
  { id: 'listClients', method: 'get', path: '/clients', command: 'clients.list', tag: 'clients', summary: 'List clients, oldest first', query: PAGE, defaults: DEFAULT_LIMIT, status: 200, response: listOf('clients', clientViewSchema) },
  {
    id: 'createClient',
    method: 'post',
    path: '/clients',
    command: 'clients.create',
    tag: 'clients',
    summary: 'Register a client (its secret is in this answer only)',
    body: 'fields',
    status: 201,
    response: clientCreated,
    entity: 'read',
    entityOf: clientOf,
    location: (result) => `/clients/${String(result['client_id'])}`,
  },
  { id: 'getClient', method: 'get', path: '/clients/{id}', command: 'clients.show', tag: 'clients', summary: 'One client', status: 200, response: clientViewSchema, entity: 'read' },
  {
    id: 'updateClient',
    method: 'patch',
    path: '/clients/{id}',
    command: 'clients.update',
    tag: 'clients',
    summary: 'Change a client\'s settings, or disable or enable it',
    description: 'A list given replaces the list; `access_token_ttl: null` goes back to ACCESS_TOKEN_TTL. The result is checked as a new client is: on a bad value nothing changes. `disabled: true` revokes every grant the client holds.',
    body: 'fields',
    bodyOmits: ONE,
    status: 200,
    response: clientViewSchema,
    entity: 'write',
  },
  { id: 'deleteClient', method: 'delete', path: '/clients/{id}', command: 'clients.delete', tag: 'clients', summary: 'Delete a client, revoking every grant it holds', status: 200, response: clientDeleted, entity: 'write' },
  {
    id: 'rotateClientSecret',
    method: 'post',
    path: '/clients/{id}/secret',
    command: 'clients.rotate-secret',
    tag: 'clients',
    summary: 'Give a client a new secret (in this answer only); the old one works for grace_seconds more',
    body: 'fields',
    bodyOmits: ONE,
    status: 200,
    response: clientSecret,
    entity: 'write',
    entityOf: clientOf,
  },
  { id: 'listUsers', method: 'get', path: '/users', command: 'users.list', tag: 'users', summary: 'List users, oldest first', query: PAGE, defaults: DEFAULT_LIMIT, status: 200, response: listOf('users', userViewSchema) },
  {
    id: 'createUser',
    method: 'post',
    path: '/users',
    command: 'users.create',
    tag: 'users',
    summary: 'Create a user',
    body: 'fields',
    status: 201,
    response: userCreated,
    entity: 'read',
    entityOf: (result) => result['user'],
    location: (result) => `/users/${String(result['id'])}`,
  },
  { id: 'getUser', method: 'get', path: '/users/{id}', command: 'users.show', tag: 'users', summary: 'One user', status: 200, response: userViewSchema, entity: 'read' },
  {
    id: 'updateUser',
    method: 'patch',
    path: '/users/{id}',
    command: 'users.update',
    tag: 'users',
    summary: 'Replace a user\'s roles, or disable or enable it',
    description: '`disabled: true` revokes every grant and session the user holds.',
    body: 'fields',
    bodyOmits: ['id', 'username'],
    status: 200,
    response: userViewSchema,
    entity: 'write',
  },
  { id: 'deleteUser', method: 'delete', path: '/users/{id}', command: 'users.delete', tag: 'users', summary: 'Delete a user, revoking every grant and session it holds', status: 200, response: userDeleted, entity: 'write' },
  {
    id: 'setUserPassword',
    method: 'post',
    path: '/users/{id}/password',
    command: 'users.set-password',
    tag: 'users',
    summary: 'Set a user\'s password, revoking every grant and session it holds',
    body: 'fields',
    bodyOmits: ['id', 'username'],
    status: 200,
    response: userPasswordSet,
    entity: 'write',
    entityOf: ({ grants_revoked: _revoked, ...user }) => user,
  },
  { id: 'listApiKeys', method: 'get', path: '/api-keys', command: 'api-keys.list', tag: 'api-keys', summary: 'List API keys, oldest first', query: PAGE, defaults: DEFAULT_LIMIT, status: 200, response: listOf('api_keys', apiKeyViewSchema) },
  {
    id: 'createApiKey',
    method: 'post',
    path: '/api-keys',
    command: 'api-keys.create',
    tag: 'api-keys',
    summary: 'Create an API key for the services it names (the key is in this answer only)',
    body: 'fields',
    status: 201,
    response: apiKeyCreated,
    entity: 'read',
    entityOf: (result) => result['api_key'],
    location: (result) => `/api-keys/${String(result['id'])}`,
  },
  { id: 'getApiKey', method: 'get', path: '/api-keys/{id}', command: 'api-keys.show', tag: 'api-keys', summary: 'One API key', status: 200, response: apiKeyViewSchema, entity: 'read' },
  {
    id: 'updateApiKey',
    method: 'patch',
    path: '/api-keys/{id}',
    command: 'api-keys.update',
    tag: 'api-keys',
    summary: 'Replace the services (resources) an API key is accepted by',
    body: 'fields',
    bodyOmits: ONE,
    status: 200,
    response: apiKeyViewSchema,
    entity: 'write',
  },
  {
    id: 'revokeApiKey',
    method: 'delete',
    path: '/api-keys/{id}',
    command: 'api-keys.revoke',
    tag: 'api-keys',
    summary: 'Revoke an API key (its record stays, with revoked_at, for the audit trail)',
    status: 200,
    response: apiKeyViewSchema,
    entity: 'write',
  },
  {
    id: 'rotateApiKey',
    method: 'post',
    path: '/api-keys/{id}/secret',
    command: 'api-keys.rotate',
    tag: 'api-keys',
    summary: 'Give an unrevoked API key a new value (in this answer only); the old value is refused at once by introspection. Nothing its record shows changes, so it takes no If-Match',
    status: 200,
    response: apiKeyCreated,
    entity: 'read',
    entityOf: (result) => result['api_key'],
  },
  { id: 'listKeys', method: 'get', path: '/keys', command: 'keys.list', tag: 'keys', summary: 'List the signing keys (public facts only; never paged: a key set holds a few)', status: 200, response: z.object({ keys: z.array(keyViewSchema) }).strict() },
  { id: 'getKey', method: 'get', path: '/keys/{kid}', command: 'keys.show', tag: 'keys', summary: 'One signing key (public facts only)', status: 200, response: keyViewSchema },
  { id: 'generateKey', method: 'post', path: '/keys', command: 'keys.generate', tag: 'keys', summary: 'Publish a new next key (it signs after a rotation)', status: 201, response: keyViewSchema, location: (result) => `/keys/${String(result['kid'])}` },
  {
    id: 'rotateKeys',
    method: 'post',
    path: '/keys/rotate',
    command: 'keys.rotate',
    tag: 'keys',
    summary: 'Promote the next key (refused, 409, before KEY_PUBLISH_LEAD unless force)',
    body: 'fields',
    status: 200,
    response: keyRotationSchema,
  },
  { id: 'retireKey', method: 'delete', path: '/keys/{kid}', command: 'keys.retire', tag: 'keys', summary: 'Retire a key that no longer signs (it stays published until its tokens expire)', status: 200, response: keyRetired },
  {
    id: 'listAuditEvents',
    method: 'get',
    path: '/audit-events',
    command: 'audit.list',
    tag: 'audit-events',
    summary: 'Sign-in and administration events, newest first',
    query: ['since', 'type', 'limit', 'cursor'],
    status: 200,
    response: listOf('events', auditEventViewSchema),
  },
  { id: 'getAuditEvent', method: 'get', path: '/audit-events/{id}', command: 'audit.show', tag: 'audit-events', summary: 'One event', status: 200, response: auditEventViewSchema },
];

/** The path parameters of an operation's path, in order (`/clients/{id}/secret` → `['id']`). */
export function pathParameters(path: string): string[] {
  return [...path.matchAll(/\{([a-z_]+)\}/gu)].map((match) => String(match[1]));
}
