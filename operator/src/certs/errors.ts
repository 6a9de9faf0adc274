/** Errors of certificate management, each with a stable code (logged by the manager). */
export type CertificateErrorCode =
  | 'InvalidCertificate' // a PEM that does not hold an X.509 certificate
  | 'InvalidKey' // a PEM private key that cannot be read or is of an unsupported kind
  | 'InvalidName' // an empty Service name, namespace or SAN
  | 'InvalidValidity'; // a validity that is not a positive number of milliseconds

export class CertificateError extends Error {
  readonly code: CertificateErrorCode;
  constructor(code: CertificateErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CertificateError';
    this.code = code;
  }
}
