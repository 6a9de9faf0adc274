export { ApprovalService, APPROVAL_REQUESTS, progressed, type ApprovalServiceDeps } from './service.ts';
export { reconcileApprovalRequest, DEFAULT_APPROVAL_RETENTION_MS, type ApprovalReconcileDeps, type ApprovalReconcileResult } from './reconcile.ts';
export { planApprovalRequest, admittedDecisions, parseDecisions, APPROVAL_CONDITIONS, APPROVAL_REASONS, type ApprovalPlan, type IgnoredDecision } from './plan.ts';
export { ApprovalKeyStore, approvalKeySecret, keyOf, APPROVAL_KEY_BYTES } from './key.ts';
export { NoticeRecorder, noticeEvent, type Notice } from './notice.ts';
export { postNotification } from './notify.ts';
export { ServiceError, type ServiceErrorCode } from './errors.ts';
export {
  annotateCommand,
  approvalRequestBody,
  approvalState,
  notificationText,
  ownedBy,
  CONNECTION_LABEL,
  POD_LABEL,
  SESSION_LABEL,
  POD_UID_ANNOTATION,
  MESSAGE_ANNOTATION,
  type ApprovalRequestStatus,
} from './request.ts';
