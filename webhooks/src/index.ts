export { ADMISSION_API_VERSION, parseAdmissionReview, reviewResponse, type AdmissionRequest, type AdmissionResponse, type AdmissionReviewResponse, type AdmissionVerdict, type UserInfo } from './admission.ts';
export { parseRecordedDecisions, reviewApprovalAdmission } from './approvals.ts';
export { InformerCaches, type ClusterView } from './caches.ts';
export {
  NAMESPACE_NAME_LABEL,
  WEBHOOK_NAMES,
  webhookConfigurations,
  type LabelSelector,
  type MutatingWebhook,
  type MutatingWebhookConfiguration,
  type RuleWithOperations,
  type ValidatingWebhook,
  type ValidatingWebhookConfiguration,
  type WebhookClientConfig,
  type WebhookConfigurationOptions,
  type WebhookConfigurations,
  type WebhookTarget,
} from './config.ts';
export { WebhookError, type WebhookErrorCode } from './errors.ts';
export { jsonLogger } from './log.ts';
export { WebhookMetrics } from './metrics.ts';
export { injectPodAdmission, type PodAdmissionContext } from './pods.ts';
export { validatePolicyAdmission } from './policies.ts';
export { AdmissionServer, admissionApp, parseAddress, type Handlers } from './server.ts';
export { Webhook, type RunningAddresses, type SidecarOptions, type WebhookOptions } from './webhook.ts';
