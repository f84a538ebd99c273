export { resourceServiceConfig, ServiceConfigError, type ResourceServiceConfig } from './service-config.js';
export { createResourceApp, runResourceService, serve, type ResourceServiceOptions } from './resource-service.js';
