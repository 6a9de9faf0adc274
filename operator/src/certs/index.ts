/** Airlock's certificates: issuance, the plan, and the manager that keeps the Secrets and caBundles. */
export { CertificateManager, type CertificateManagerOptions, type ControlTls } from './manager.ts';
export { CertificateError, type CertificateErrorCode } from './errors.ts';
export { DEFAULT_CA_VALIDITY_MS, DEFAULT_LEAF_VALIDITY_MS, crossSign, issueCa, issueServingCertificate, serviceNames, type Issued, type ServingNames } from './issue.ts';
export { CA_KEYS, ROTATE_CA_ANNOTATION, TLS_KEYS, caBundlePatch, planCertificates, type CertificatePlan, type CertificateStep, type PlanInput } from './plan.ts';
