import { GuardError, writeRefusal } from '@sigil/guard';
import express, { type Request, type RequestHandler, type Response } from 'express';

import { BODY_LIMIT } from '../../http/input-gate.js';
import type { Logger } from '../../logger.js';
import { KeyNotFoundError, KeyRequestError, KeyStoreError } from '../../keys/key-store.js';
import { errorBody, logUnavailable, RETRY_AFTER_SECONDS, SERVER_ERROR, sendError, TEMPORARILY_UNAVAILABLE } from '../../oidc/errors.js';
import { isDatabaseUnavailable, isDataException } from '../../storage/unavailable.js';
import { adminCommands, AdminConflictError, AdminInputError, isAdminChange, AdminNotFoundError, AdminPreconditionFailed, runAdminCommand, type AdminContext } from '../commands.js';
import { adminAudience, authorize, type AdminTokenVerifier } from './authentication.js';
import { ADMIN_OPERATIONS, pathParameters, type AdminOperation } from './operations.js';
import { commandFields, describeProblems, entityTag, fieldProblems, ifMatch, parseBody, WireError, wireMessage, type FieldLocation, type FieldProblem } from './wire.js';

/** Where the admin API is served. */
export const ADMIN_API_PATH = '/admin/v1';

/** Whether a request path is the admin API's (exactly: paths are case-sensitive, RFC 3986 §6.2.2.1). */
export function isAdminApiPath(path: string): boolean {
  return path === ADMIN_API_PATH || path.startsWith(`${ADMIN_API_PATH}/`);
}


export interface AdminApiOptions {
  readonly issuer: string;
  readonly verifier: AdminTokenVerifier;
  /** The admin commands' context, without the actor (each request's caller is). */
  readonly context: Omit<AdminContext, 'actor'>;
  /** The OpenAPI document (openapi.ts), served at /admin/v1/openapi.json. */
  readonly openapi: () => unknown;
  readonly logger: Logger;
}

/** An error answer of the admin API: RFC 6749 §5.2's shape, with the fields at fault for bad input. */
function sendProblem(res: Response, status: number, code: string, description: string, fields: readonly FieldProblem[] = []): void {
  sendError(res, status, { ...errorBody(code, description), ...(fields.length > 0 ? { fields } : {}) });
}

/** A query string's parameters, each given at most once, as a command's input fields (and the problems of the others). */
function queryFields(req: Request, operation: AdminOperation): ReturnType<typeof commandFields> {
  const search = new URLSearchParams(req.url.includes('?') ? req.url.slice(req.url.indexOf('?') + 1) : '');
  const allowed = operation.query ?? [];
  const problems: FieldProblem[] = [];
  const wire: Record<string, unknown> = {};
  for (const name of new Set(search.keys())) {
    const values = search.getAll(name);
    if (!allowed.includes(name)) problems.push({ in: 'query', field: name, message: 'unknown parameter' });
    else if (values.length > 1) problems.push({ in: 'query', field: name, message: 'given more than once' });
    // a number parameter: digits only, else NaN, which its schema refuses by name
    else wire[name] = name === 'limit' ? (/^\d{1,6}$/u.test(String(values[0])) ? Number(values[0]) : Number.NaN) : values[0];
  }
  const mapped = commandFields(wire, 'query');
  return { fields: mapped.fields, problems: [...problems, ...mapped.problems] };
}

/** The body's fields as the command's input fields (and the problems of the others). */
function bodyFields(req: Request, operation: AdminOperation): ReturnType<typeof commandFields> {
  if (req.url.includes('?')) throw new WireError('this operation takes no query parameters', [{ in: 'query', message: 'no query parameters are taken' }]);
  const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
  if (raw.length > 0 && !req.is('application/json')) throw new WireError('the body must be application/json', [], 415);
  const body = parseBody(raw);
  // an operation without body fields takes an empty body or {}
  const reserved = operation.body === 'fields' ? [...pathParameters(operation.path), ...(operation.bodyOmits ?? [])] : Object.keys(body);
  return commandFields(body, 'body', reserved);
}

/**
 * The command input of a request: the operation's defaults, then the query's or the body's
 * fields, then the path parameters. When some fields cannot be mapped, the others are checked by
 * the command's schema too, so that one answer names every field at fault.
 * @throws WireError
 */
function commandInput(req: Request, operation: AdminOperation): Record<string, unknown> {
  const fromPath = Object.fromEntries(pathParameters(operation.path).map((name) => [name, String(req.params[name])]));
  const { fields, problems } = operation.method === 'get' ? queryFields(req, operation) : bodyFields(req, operation);
  const input = { ...operation.defaults, ...fields, ...fromPath };
  if (problems.length === 0) return input;
  const checked = adminCommands[operation.command].input.safeParse(input);
  const all = [...problems, ...(checked.success ? [] : fieldProblems(checked.error.issues, locator(operation)))];
  throw new WireError(describeProblems(all), all);
}

/** Where a command's top-level input field came from, for the answer's field list. */
function locator(operation: AdminOperation): (field: string | undefined) => FieldLocation {
  const parameters = pathParameters(operation.path);
  return (field) => (field !== undefined && parameters.includes(field) ? 'path' : operation.method === 'get' ? 'query' : 'body');
}

/** The answer to a failed request; never a stack or an internal detail. */
function answerFailure(res: Response, operation: AdminOperation, error: unknown, realm: string, logger: Logger): void {
  if (error instanceof GuardError) {
    // why, for the operator (never the token): a refused admin call is worth knowing about
    logger.info({ operation: operation.id, refusal: error.code, reason: error.reason }, 'admin API request refused');
    return writeRefusal(res, error, realm);
  }
  if (error instanceof WireError) {
    return sendProblem(res, error.status, error.status === 415 ? 'unsupported_media_type' : 'invalid_request', error.message, error.problems);
  }
  if (error instanceof AdminNotFoundError || error instanceof KeyNotFoundError) return sendProblem(res, 404, 'not_found', error.message);
  if (error instanceof AdminConflictError) return sendProblem(res, 409, 'conflict', error.message);
  if (error instanceof AdminInputError) {
    const problems = fieldProblems(error.issues, locator(operation));
    // an id in the path that cannot name anything names nothing
    if (problems.length > 0 && problems.every((problem) => problem.in === 'path')) return sendProblem(res, 404, 'not_found', `no such ${operation.tag.replace(/s$/u, '').replace('-', ' ')}`);
    return sendProblem(res, 400, 'invalid_request', problems.length > 0 ? describeProblems(problems) : wireMessage(error.message), problems);
  }
  if (error instanceof AdminPreconditionFailed) {
    res.setHeader('ETag', entityTag(error.current));
    return sendProblem(res, 412, 'precondition_failed', error.message);
  }
  if (error instanceof KeyRequestError) return sendProblem(res, 400, 'invalid_request', wireMessage(error.message));
  // a refusal the operator acts on: a rotation before KEY_PUBLISH_LEAD, a key store that cannot be written
  if (error instanceof KeyStoreError) return sendProblem(res, 409, 'conflict', wireMessage(error.message));
  // a value the database cannot hold (SQLSTATE class 22, data exception) that no schema caught: still the caller's
  if (isDataException(error)) {
    logger.warn({ err: error, operation: operation.id }, 'admin API input refused by the database');
    return sendProblem(res, 400, 'invalid_request', 'a value is out of the range the database can hold');
  }
  if (isDatabaseUnavailable(error)) {
    logUnavailable(logger, error);
    res.setHeader('Retry-After', String(RETRY_AFTER_SECONDS));
    return sendError(res, 503, TEMPORARILY_UNAVAILABLE);
  }
  logger.error({ err: error, operation: operation.id }, 'admin API request failed');
  return sendError(res, 500, SERVER_ERROR);
}

/** One operation: authenticate, authorize, build the input, run the command (conditionally on If-Match), answer. */
function handler(operation: AdminOperation, options: AdminApiOptions): RequestHandler {
  const realm = adminAudience(options.issuer);
  const reads = operation.method === 'get';
  return async (req, res) => {
    try {
      const caller = await options.verifier.verify(req.get('authorization'));
      authorize(caller, reads);
      const input = commandInput(req, operation);
      const condition = operation.entity === 'write' ? ifMatch(req.get('if-match')) : undefined;
      // a change to an object without an entity tag (a creation, the signing keys) cannot be made conditional: say so rather than ignore it
      if (condition === undefined && !reads && req.get('if-match') !== undefined) {
        throw new WireError('this operation takes no If-Match (the object it changes has no ETag)', [{ in: 'header', field: 'If-Match', message: 'not taken by this operation' }]);
      }
      const result = await runAdminCommand({ ...options.context, actor: caller.clientId }, operation.command, input, {
        ...(condition === undefined ? {} : { precondition: (current) => condition(entityTag(current)) }),
      });
      // a deleted object has no representation left to tag
      if (operation.entity !== undefined && operation.method !== 'delete') res.setHeader('ETag', entityTag(operation.entityOf?.(result) ?? result));
      if (operation.location !== undefined) res.setHeader('Location', `${options.issuer}${ADMIN_API_PATH}${operation.location(result)}`);
      // a change has its own line (admin.change, event-log.ts): this one only at debug then
      options.logger[isAdminChange(operation.command) ? 'debug' : 'info']({ operation: operation.id, actor: caller.clientId }, 'admin API request');
      res.status(operation.status).json(result);
    } catch (error) {
      answerFailure(res, operation, error, realm, options.logger);
    }
  };
}

/** An express path of an OpenAPI one (`/clients/{id}` → `/clients/:id`). */
const expressPath = (path: string) => path.replace(/\{([a-z_]+)\}/gu, ':$1');

/**
 * The admin API under /admin/v1 (README, "Administration"): the operations of operations.ts,
 * the OpenAPI document, and JSON answers for everything else (405 with `Allow` on a known path,
 * 404 elsewhere). Every answer is `Cache-Control: no-store`: some carry a secret, shown once.
 */
export function adminApi(options: AdminApiOptions): express.Router {
  const router = express.Router({ strict: true, caseSensitive: true });
  router.use((_req, res, next) => {
    res.setHeader('Cache-Control', 'no-store');
    next();
  });
  router.get('/openapi.json', (_req, res) => {
    res.json(options.openapi());
  });
  const body = express.raw({ type: () => true, limit: BODY_LIMIT });
  const methods = new Map<string, string[]>();
  for (const operation of ADMIN_OPERATIONS) {
    const path = expressPath(operation.path);
    if (operation.method === 'get') router.get(path, handler(operation, options));
    else router[operation.method](path, body, handler(operation, options));
    methods.set(path, [...(methods.get(path) ?? []), operation.method.toUpperCase()]);
  }
  for (const [path, allowed] of methods) {
    const allow = [...allowed, ...(allowed.includes('GET') ? ['HEAD'] : [])].join(', ');
    router.all(path, (req, res) => {
      res.setHeader('Allow', allow);
      sendProblem(res, 405, 'method_not_allowed', `${req.method} is not allowed here (allowed: ${allow})`);
    });
  }
  router.use((_req, res) => {
    sendProblem(res, 404, 'not_found', 'no such admin API endpoint');
  });
  // a body express could not read (too large, aborted): bad input, never a 500
  router.use(((error, _req, res, _next) => {
    const status = (error as { status?: unknown }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      // 400 as the input gate answers an oversized POST before it gets here
      sendProblem(res, 400, 'invalid_request', status === 413 ? 'the request body is too large' : 'the request could not be read');
      return;
    }
    options.logger.error({ err: error }, 'admin API request failed');
    sendError(res, 500, SERVER_ERROR);
  }) satisfies express.ErrorRequestHandler);
  return router;
}
