import type { UpstreamConfig } from './config.ts';
import type { ProxyOptions, RunningProxy } from './proxy.ts';

export { FrontendParser, DEFAULT_LIMITS, type FrontendLimits, type FrontendMessage, type Framed } from './pg/frontend.ts';
export * as backend from './pg/backend.ts';
export { ProtocolError } from './pg/errors.ts';
export { RecordingWriter, RecorderError, type RecordingWriterOptions } from './record/writer.ts';
export { SidecarError, type SidecarErrorCode } from './errors.ts';
export { pgReply, sshReply, SSH_REFUSED_STATUS, type PgReply, type SshReply } from './replies.ts';
export { createLogger, silentLogger, type Logger } from './log.ts';
export { resolveUpstream, type Credentials, type TlsMode, type UpstreamConfig } from './config.ts';
export { fixedPolicy, noPolicyMessage, policyOf, type Enforcement, type ObservedSession, type PolicySource, type ProxyOptions, type RunningProxy, type SessionCounts, type SessionObserver } from './proxy.ts';
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

export type StartProxy = (options: ProxyOptions) => Promise<RunningProxy>;

/**
 * The proxy of one protocol, its modules imported on first use: a PostgreSQL sidecar never loads
 * ssh2, nor an SSH one the PostgreSQL session code (resident memory of a long-running process).
 */
export async function loadProxy(protocol: UpstreamConfig['protocol']): Promise<StartProxy> {
  return protocol === 'postgres' ? (await import('./pg/proxy.ts')).startPgProxy : (await import('./ssh/proxy.ts')).startSshProxy;
}

export async function startPgProxy(options: ProxyOptions): Promise<RunningProxy> {
  return (await loadProxy('postgres'))(options);
}

export async function startSshProxy(options: ProxyOptions): Promise<RunningProxy> {
  return (await loadProxy('ssh'))(options);
}
export { AsciicastWriter, castEventLine, castHeaderLine, type CastHeader } from './record/asciicast.ts';
export { LineEditor, type EditorSegment, type EnterSegment, type DataSegment } from './ssh/line-editor.ts';
export { sha256Fingerprint, normalizeFingerprint, isPinned } from './ssh/fingerprint.ts';
export { ClusterSidecar, recordingsDirOf, BUNDLE_WAIT_SECONDS, type ClusterSidecarOptions } from './cluster/sidecar.ts';
export { ControlClient, ControlRequestError, type ControlClientOptions } from './cluster/client.ts';
export { ClusterApprovals, askOf } from './cluster/approvals.ts';
export { ReportBuffer, ReportSender, SessionReporter, parseReportBuffer, REPORT_BUFFER_FILE } from './cluster/reports.ts';
export { compileConnection, compileSidecarBundle, manifestsOf, type CompiledConnection } from './cluster/compile.ts';
export { planListeners, sameSpec, type ListenerPlan, type ListenerSpec } from './cluster/plan.ts';
export { sessionName } from './cluster/names.ts';
