/** The operator's structured JSON logs on stderr (component "operator"); each line of a reconcile carries its key and kind. */
import type { Logger } from 'winston';
import { createJsonLogger } from '@airlock/kube';

export function jsonLogger(level = 'info', stream: NodeJS.WritableStream = process.stderr): Logger {
  return createJsonLogger('operator', level, stream);
}
