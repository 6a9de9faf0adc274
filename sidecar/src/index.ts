export { FrontendParser, DEFAULT_LIMITS, type FrontendLimits, type FrontendMessage, type Framed } from './pg/frontend.ts';
export * as backend from './pg/backend.ts';
export { ProtocolError } from './pg/errors.ts';
export { GENESIS, seal, verifyRecording, type RecordBody, type SealedRecord, type VerifyOptions, type VerifyResult } from './record/chain.ts';
export { RecordingWriter, RecorderError } from './record/writer.ts';
