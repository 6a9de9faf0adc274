// What Airlock's Kubernetes processes (the operator and the webhooks) share.
export { parseHostPort, type HostPort } from './address.ts';
export { PooledAuthentication, apiConfiguration } from './clients.ts';
export { systemClock, type Clock } from './clock.ts';
export { HealthServer, type Probe } from './health.ts';
export { closeGracefully, listen } from './http.ts';
export { SupervisedInformer, type InformerEvent, type InformerSource, type SupervisedInformerOptions } from './informer.ts';
export { createJsonLogger } from './log.ts';
export { metricsRegistry } from './metrics.ts';
