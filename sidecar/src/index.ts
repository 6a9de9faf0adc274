export { FrontendParser, DEFAULT_LIMITS, type FrontendLimits, type FrontendMessage, type Framed } from './pg/frontend.ts';
export * as backend from './pg/backend.ts';
export { ProtocolError } from './pg/errors.ts';
