export { RESOURCE_SERVICE_VARIABLES, resourceServiceConfig, ServiceConfigError, type ResourceServiceConfig } from './service-config.js';
export { createResourceApp, runResourceService, serve, type ResourceServiceOptions } from './resource-service.js';
export { createTokenExchanger, TokenExchangeFailed, type ExchangedToken, type TokenExchangerOptions } from './token-exchange.js';
export { guardMetrics } from './metrics.js';
