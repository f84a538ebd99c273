import type { FastifyPluginCallback, FastifyReply, FastifyRequest, HookHandlerDoneFunction, preHandlerHookHandler } from 'fastify';
import fastifyPlugin from 'fastify-plugin';

import { hasAnyRole, hasEveryScope, noPrincipal, type Check, type Refusal } from './core.js';
import type { RequestReader } from './credentials.js';
import { coreOf, type CoreGuard } from './guard.js';
import type { Principal } from './principal.js';

/*
 * `@sigil/guard/fastify`: the guard on Fastify 5, over the same core as the express middleware
 * (core.ts), so its answers are the same: the same statuses, RFC 6750 / RFC 9449 challenges,
 * headers and JSON bodies. Only this module loads Fastify's types and fastify-plugin.
 */

export { createCoreGuard, type CoreGuard, type GuardOptions } from './guard.js';
export type { Principal } from './principal.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated caller, set by the guard's preHandler hooks. */
    auth?: Principal | undefined;
  }
}

/**
 * @example
 * ```ts
 * app.get('/export.csv', { preHandler: [auth.requireAuth({ apiKeyInQuery: true }), auth.requireScope('orders:read')] }, exportCsv);
 * ```
 */
export interface FastifyRequireAuthOptions {
  /** Also accept an API key in the `api_key` query parameter (off by default: URLs leak into logs). */
  readonly apiKeyInQuery?: boolean;
}

/** The Fastify side of a guard: the plugin that decorates `request.auth`, and the `preHandler` hooks.
 *
 * @example
 * ```ts
 * const auth = fastifyGuard(createCoreGuard({ issuer, audience }));
 * await app.register(auth.plugin);
 * app.get('/orders', { preHandler: auth.requireScope('orders:read') }, (request) => ({ orders: [], by: request.auth?.sub }));
 * ```
 */
export interface FastifyGuard {
  /** Register once, on the instance whose routes use the hooks (it is not encapsulated: it reaches the whole app). */
  readonly plugin: FastifyPluginCallback;
  /** Authenticates the request and sets `request.auth`. */
  requireAuth(options?: FastifyRequireAuthOptions): preHandlerHookHandler;
  /** Requires every one of `scopes` (authenticating first when needed). */
  requireScope(...scopes: string[]): preHandlerHookHandler;
  /** Requires at least one of `roles` (authenticating first when needed). */
  requireRole(...roles: string[]): preHandlerHookHandler;
}

/** The request target without its query. */
const pathOf = (target: string) => {
  const query = target.indexOf('?');
  return query === -1 ? target : target.slice(0, query);
};

/** How the core reads a Fastify request (`host` and `protocol` follow Fastify's `trustProxy`). */
const fastifyReader: RequestReader<FastifyRequest> = {
  headers: (request) => request.headers,
  method: (request) => request.method,
  path: (request) => pathOf(request.url),
  url: (request, publicUrl) => `${publicUrl ?? `${request.protocol}://${request.host}`}${pathOf(request.url)}`,
  queryApiKey: (request) => {
    if (!request.url.includes('?')) return undefined;
    const query = request.query;
    return typeof query === 'object' && query !== null ? (query as Record<string, unknown>)['api_key'] : undefined;
  },
};

/** Answers a refusal of the core: its status, its headers in order, its JSON body. */
function sendRefusal(reply: FastifyReply, refusal: Refusal): void {
  void reply.code(refusal.status).headers(refusal.headers).send(refusal.body);
}

/**
 * The guard's Fastify plugin and `preHandler` hooks, for a guard made by `createCoreGuard` (or
 * `createGuard`). A request whose credential is cached continues synchronously; any other is
 * verified, and every refusal is answered as the express middleware answers it.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify';
 * import { createCoreGuard, fastifyGuard } from '@sigil/guard/fastify';
 *
 * const auth = fastifyGuard(createCoreGuard({ issuer: 'http://localhost:4000', audience: 'http://localhost:4001' }));
 * const app = Fastify();
 * await app.register(auth.plugin);
 * app.get('/orders', { preHandler: auth.requireScope('orders:read') }, async () => ({ orders: [] }));
 * app.get('/admin', { preHandler: auth.requireRole('admin') }, async (request) => ({ sub: request.auth?.sub }));
 * ```
 */
export function fastifyGuard(guard: CoreGuard): FastifyGuard {
  const core = coreOf(guard);
  const fail = (request: FastifyRequest, reply: FastifyReply, error: unknown) => sendRefusal(reply, core.refuse(fastifyReader, request, error));

  const accept = (principal: Principal, request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
    request.auth = principal;
    // RFC 9449 §9: a fresh nonce with every answer to a proof, so that the client's next one stays valid
    const nonce = core.nonceFor(principal);
    if (nonce !== undefined) void reply.header('DPoP-Nonce', nonce);
    done();
  };

  function authenticate(request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction, apiKeyInQuery: boolean): void {
    let principal;
    try {
      principal = core.cached(fastifyReader, request, apiKeyInQuery);
    } catch (error) {
      fail(request, reply, error);
      return;
    }
    if (principal !== undefined) {
      accept(principal, request, reply, done);
      return;
    }
    core.authenticate(fastifyReader, request, apiKeyInQuery).then(
      (verified) => accept(verified, request, reply, done),
      (error: unknown) => fail(request, reply, error),
    );
  }

  function requireAuth(options: FastifyRequireAuthOptions = {}): preHandlerHookHandler {
    const apiKeyInQuery = options.apiKeyInQuery === true;
    return function sigilRequireAuth(request, reply, done) {
      authenticate(request, reply, done, apiKeyInQuery);
    };
  }

  /** Runs `check` on the principal, authenticating first when no earlier hook did. */
  function authorize(check: Check): preHandlerHookHandler {
    const decide = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
      const principal = request.auth;
      const refusal = principal === undefined ? noPrincipal() : check(principal);
      if (refusal === undefined) done();
      else fail(request, reply, refusal);
    };
    return function sigilAuthorize(request, reply, done) {
      if (request.auth !== undefined) {
        decide(request, reply, done);
        return;
      }
      authenticate(request, reply, () => decide(request, reply, done), false);
    };
  }

  const plugin: FastifyPluginCallback = fastifyPlugin(
    (app, _options, done) => {
      app.decorateRequest('auth', undefined);
      done();
    },
    { name: '@sigil/guard', fastify: '5.x' },
  );

  return {
    plugin,
    requireAuth,
    requireScope: (...scopes) => authorize(hasEveryScope(scopes)),
    requireRole: (...roles) => authorize(hasAnyRole(roles)),
  };
}
