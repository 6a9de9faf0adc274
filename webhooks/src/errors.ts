/** Errors of the webhook server, each with a stable code (logged, and mapped to exit statuses by the CLI). */
export type WebhookErrorCode =
  | 'InvalidAddress' // --listen / --metrics-addr is not host:port
  | 'InvalidReview' // a request body that is not an AdmissionReview v1
  | 'TlsUnavailable' // tls.crt / tls.key missing or not a matching pair
  | 'InvalidSettings'; // a setting of the injected sidecar is missing or malformed

export class WebhookError extends Error {
  readonly code: WebhookErrorCode;
  constructor(code: WebhookErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'WebhookError';
    this.code = code;
  }
}
