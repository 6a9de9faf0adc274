export { FrontendParser, DEFAULT_LIMITS, type FrontendLimits, type FrontendMessage, type Framed } from './pg/frontend.ts';
export * as backend from './pg/backend.ts';
export { ProtocolError } from './pg/errors.ts';
export { GENESIS, recordingText, seal, verifyRecording, type RecordBody, type SealedRecord, type VerifyOptions, type VerifyResult } from './record/chain.ts';
export { RecordingWriter, RecorderError, type RecordingWriterOptions } from './record/writer.ts';
export { SidecarError, type SidecarErrorCode } from './errors.ts';
export { pgReply, sshReply, SSH_REFUSED_STATUS, type PgReply, type SshReply } from './replies.ts';
export { createLogger, silentLogger, type Logger } from './log.ts';
export { resolveUpstream, type Credentials, type TlsMode, type UpstreamConfig } from './config.ts';
export type { ProxyOptions, RunningProxy } from './proxy.ts';
export { sessionFiles, type SessionFiles } from './record/files.ts';
export type { ApprovalOutcome, ApprovalPhase, ApprovalPort, ApprovalTicket, PendingApproval, ReviewerDecision } from './approval/port.ts';
export {
  ApprovalFileError,
  LocalApprovals,
  applyReview,
  approvalsDir,
  listApprovals,
  readApproval,
  reviewApproval,
  type LocalApprovalFile,
  type ReviewInput,
} from './approval/local.ts';
export { defaultStateDir } from './state.ts';
export { startSshProxy } from './ssh/proxy.ts';
export { startPgProxy } from './pg/proxy.ts';
export { AsciicastWriter, castEventLine, castHeaderLine, verifyCast, type CastCheckpoint, type CastHeader, type CastVerifyResult } from './record/asciicast.ts';
export { LineEditor, type EditorSegment, type EnterSegment, type DataSegment } from './ssh/line-editor.ts';
export { sha256Fingerprint, normalizeFingerprint, isPinned } from './ssh/fingerprint.ts';
