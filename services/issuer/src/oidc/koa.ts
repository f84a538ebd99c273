import type Provider from 'oidc-provider';

/** A middleware of the engine's koa application (`provider.use`). */
export type KoaMiddleware = Parameters<Provider['use']>[0];
