export { SessionService, AGENT_SESSIONS, type SessionServiceDeps, type ReportOutcome } from './service.ts';
export { planSessionRetention, reconcileSessionRetention, DEFAULT_SESSION_RETENTION, type RetentionPlan } from './retention.ts';
export { connectionActivity, RECENT_SESSIONS, type ConnectionActivity, type SessionSummary } from './summary.ts';
export { agentSessionName, appliedSeq, sessionStatus, validateReport, SEQ_ANNOTATION } from './report.ts';
