/** The webhook's structured JSON logs on stderr (component "webhook"), one object per line. */
import type { Logger } from 'winston';
import { createJsonLogger } from '@airlock/kube';

export function jsonLogger(level = 'info', stream: NodeJS.WritableStream = process.stderr): Logger {
  return createJsonLogger('webhook', level, stream);
}
