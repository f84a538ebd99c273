/**
 * `@sigil/guard`: the framework-neutral guard (also `@sigil/guard/core`) and its express
 * middleware (`createGuard`). The Fastify plugin is `@sigil/guard/fastify`.
 */
export * from './core-index.js';
export { createGuard, requestUrl, type Guard, type GuardMiddleware, type RequireAuthOptions } from './middleware.js';
export { writeErrorResponse, writeRefusal } from './refusal.js';
