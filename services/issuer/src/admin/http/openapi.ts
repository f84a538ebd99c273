import { z } from 'zod';

import { keyViewSchema } from '../../keys/commands.js';
import { adminCommands } from '../commands.js';
import { apiKeyViewSchema, auditEventViewSchema, clientViewSchema, commandField, userViewSchema, wireName } from '../views.js';
import { ADMIN_SCOPE, adminAudience, READ_SCOPE } from './authentication.js';
import { ADMIN_OPERATIONS, pathParameters, type AdminOperation } from './operations.js';
import { ADMIN_API_PATH } from './router.js';

/**
 * The admin API's OpenAPI 3.1 document, generated from the schemas that run: each operation's
 * parameters and body from its admin command's input schema (zod's JSON Schema output, in wire
 * names: wire.ts), each answer from the view schemas the commands' results are typed by
 * (views.ts). Nothing in it is written twice by hand, so it cannot drift from what is enforced.
 */

type JsonSchema = Record<string, unknown>;

/** The named schemas of the answers: the views, then one per operation that answers something else. */
function responseSchemas(): { readonly schemas: Record<string, JsonSchema>; readonly idOf: Map<z.ZodType, string> } {
  const registry = z.registry<{ id: string }>();
  const idOf = new Map<z.ZodType, string>();
  const add = (schema: z.ZodType, id: string) => {
    if (idOf.has(schema)) return;
    registry.add(schema, { id });
    idOf.set(schema, id);
  };
  add(clientViewSchema, 'Client');
  add(userViewSchema, 'User');
  add(apiKeyViewSchema, 'ApiKey');
  add(keyViewSchema, 'SigningKey');
  add(auditEventViewSchema, 'AuditEvent');
  for (const operation of ADMIN_OPERATIONS) add(operation.response, `${operation.id[0]?.toUpperCase() ?? ''}${operation.id.slice(1)}Response`);
  const { schemas } = z.toJSONSchema(registry, { target: 'draft-2020-12', io: 'output', uri: (id) => `#/components/schemas/${id}` });
  return { schemas: Object.fromEntries(Object.entries(schemas).map(([id, schema]) => [id, withoutDialect(schema as JsonSchema)])), idOf };
}

/**
 * A schema inside the document: OpenAPI 3.1's dialect is the default, no `$schema` each, and
 * no `$id` (the generator names each by a fragment, which JSON Schema 2020-12 does not allow in
 * `$id`; components are found by their place in the document).
 */
function withoutDialect({ $schema: _dialect, $id: _id, ...schema }: JsonSchema): JsonSchema {
  return schema;
}

/** An operation's command input as JSON Schema (what a caller sends: defaults optional). */
function inputSchema(operation: AdminOperation): { readonly properties: Record<string, JsonSchema>; readonly required: readonly string[] } {
  const schema = z.toJSONSchema(adminCommands[operation.command].input, { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' }) as JsonSchema;
  return { properties: (schema['properties'] ?? {}) as Record<string, JsonSchema>, required: (schema['required'] ?? []) as string[] };
}

/** A command field's schema under its wire name (`scopes`, a list in the command, is the `scope` string on the wire). */
function wireField(field: string, schema: JsonSchema): [string, JsonSchema] {
  if (field === 'scopes') return ['scope', { type: 'string', description: 'space-separated scopes (RFC 6749 §3.3)' }];
  return [wireName(field), schema];
}

function parameters(operation: AdminOperation): JsonSchema[] {
  const { properties, required } = inputSchema(operation);
  const inPath = pathParameters(operation.path).map((name) => ({ name, in: 'path', required: true, schema: properties[name] ?? { type: 'string' } }));
  const inQuery = (operation.query ?? []).map((name) => {
    const field = commandField(name);
    const schema = properties[field] ?? { type: 'string' };
    return { name, in: 'query', required: required.includes(field) && operation.defaults?.[field] === undefined, schema: operation.defaults?.[field] === undefined ? schema : { ...schema, default: operation.defaults[field] } };
  });
  return [...inPath, ...inQuery];
}

function requestBody(operation: AdminOperation): JsonSchema | undefined {
  if (operation.body !== 'fields') return undefined;
  const { properties, required } = inputSchema(operation);
  const excluded = new Set([...pathParameters(operation.path), ...(operation.bodyOmits ?? [])]);
  const fields = Object.entries(properties).filter(([field]) => !excluded.has(field));
  const schema = {
    type: 'object',
    properties: Object.fromEntries(fields.map(([field, value]) => wireField(field, value))),
    required: required.filter((field) => !excluded.has(field)).map(wireName),
    additionalProperties: false,
  };
  return { required: required.some((field) => !excluded.has(field)), content: { 'application/json': { schema } } };
}

const ERROR = { $ref: '#/components/schemas/Error' };
const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: ERROR } } });
const ETAG = { description: 'the entity tag of the object (for If-Match)', schema: { type: 'string' } };

/** Every answer an operation can give. */
function responses(operation: AdminOperation, idOf: Map<z.ZodType, string>): JsonSchema {
  const headers: Record<string, JsonSchema> = {};
  if (operation.entity !== undefined) headers['ETag'] = ETAG;
  if (operation.location !== undefined) headers['Location'] = { description: 'where the created object is', schema: { type: 'string', format: 'uri' } };
  const answers: Record<string, JsonSchema> = {
    [String(operation.status)]: {
      description: operation.summary,
      ...(Object.keys(headers).length > 0 ? { headers } : {}),
      content: { 'application/json': { schema: { $ref: `#/components/schemas/${String(idOf.get(operation.response))}` } } },
    },
    '400': errorResponse('bad input: `error` invalid_request, `fields` names each field at fault'),
    '401': errorResponse('no valid access token for the admin API (WWW-Authenticate: Bearer, RFC 6750)'),
    '403': errorResponse('the token lacks the scope (insufficient_scope)'),
    '503': errorResponse('the database is unreachable (temporarily_unavailable, Retry-After)'),
  };
  if (pathParameters(operation.path).length > 0) answers['404'] = errorResponse('no such object (not_found)');
  if (operation.method !== 'get') {
    answers['409'] = errorResponse('the change clashes with what exists, or is refused for now (conflict)');
    answers['415'] = errorResponse('a body that is not application/json (unsupported_media_type)');
  }
  if (operation.entity === 'write') answers['412'] = { ...errorResponse('If-Match did not match: the object changed since it was read (precondition_failed)'), headers: { ETag: ETAG } };
  return answers;
}

const errorSchema = {
  type: 'object',
  description: 'RFC 6749 §5.2-style error; RFC 6750 codes (invalid_token, insufficient_scope) on 401 and 403',
  properties: {
    error: { type: 'string' },
    error_description: { type: 'string' },
    fields: {
      type: 'array',
      items: {
        type: 'object',
        properties: { in: { enum: ['body', 'query', 'path', 'header'] }, field: { type: 'string' }, message: { type: 'string' } },
        required: ['in', 'message'],
        additionalProperties: false,
      },
    },
  },
  required: ['error', 'error_description'],
  additionalProperties: false,
};

/** The document for an issuer at `issuer`. */
export function openApiDocument(issuer: string, version: string): JsonSchema {
  const { schemas, idOf } = responseSchemas();
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const operation of ADMIN_OPERATIONS) {
    const body = requestBody(operation);
    const reads = operation.method === 'get';
    (paths[operation.path] ??= {})[operation.method] = {
      operationId: operation.id,
      tags: [operation.tag],
      summary: operation.summary,
      ...(operation.description === undefined ? {} : { description: operation.description }),
      security: reads ? [{ sigil: [READ_SCOPE] }, { sigil: [ADMIN_SCOPE] }] : [{ sigil: [ADMIN_SCOPE] }],
      parameters: [...parameters(operation), ...(operation.entity === 'write' ? [{ name: 'If-Match', in: 'header', required: false, schema: { type: 'string' }, description: 'make the change only if the object is still as read (its ETag), RFC 9110 §13.1.1' }] : [])],
      ...(body === undefined ? {} : { requestBody: body }),
      responses: responses(operation, idOf),
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Sigil admin API',
      version,
      description: `Administration of clients, users, API keys, signing keys and the audit trail. Authenticate with a Sigil access token for the audience ${adminAudience(issuer)}: scope ${ADMIN_SCOPE} for everything, ${READ_SCOPE} for reads.`,
    },
    servers: [{ url: `${issuer}${ADMIN_API_PATH}` }],
    tags: ['clients', 'users', 'api-keys', 'keys', 'audit-events'].map((name) => ({ name })),
    paths,
    components: {
      schemas: { ...schemas, Error: errorSchema },
      securitySchemes: {
        sigil: {
          type: 'oauth2',
          description: `The admin client's own client-credentials token, requested with resource=${adminAudience(issuer)} (tokens issued to a person are refused)`,
          flows: { clientCredentials: { tokenUrl: `${issuer}/token`, scopes: { [ADMIN_SCOPE]: 'every admin operation', [READ_SCOPE]: 'read operations only' } } },
        },
      },
    },
  };
}
