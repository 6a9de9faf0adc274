/** Errors of the operator, each with a stable code (logged, and mapped to exit statuses by the CLI). */
export type OperatorErrorCode =
  | 'QueueShutDown' // add() after shutDown()
  | 'InvalidKey' // a work-queue key that is not kind/namespace/name
  | 'InvalidAddress' // --metrics-addr is not host:port
  | 'StatusWriteFailed'; // the API server refused a status update

export class OperatorError extends Error {
  readonly code: OperatorErrorCode;
  constructor(code: OperatorErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'OperatorError';
    this.code = code;
  }
}
