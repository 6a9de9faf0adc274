export { Operator, type OperatorOptions } from './operator.ts';
export { contextNamespace, kubeFromConfig, loadKubeConfig, type Kube } from './kube.ts';
export { jsonLogger } from './log.ts';
export { parseAddress } from './address.ts';
export { OperatorError, type OperatorErrorCode } from './errors.ts';
export { WorkQueue } from './queue.ts';
export { RateLimiter, DEFAULT_RATE_LIMITER, type RateLimiterOptions } from './rate-limiter.ts';
export { CONDITION_TYPES, REASONS } from './conditions.ts';
