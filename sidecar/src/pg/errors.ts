/** A malformed or oversized wire message. The session layer answers it with an ErrorResponse and closes. */
export class ProtocolError extends Error {
  /** SQLSTATE sent to the client: 08P01 protocol_violation, 54000 program_limit_exceeded */
  readonly sqlState: '08P01' | '54000';
  constructor(message: string, sqlState: '08P01' | '54000' = '08P01') {
    super(message);
    this.name = 'ProtocolError';
    this.sqlState = sqlState;
  }
}
