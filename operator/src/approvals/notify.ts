/**
 * The optional outgoing notification of a new ApprovalRequest: a JSON POST of `{"text": ...}`
 * (what Slack and Microsoft Teams incoming webhooks accept). Best effort: a failure or a slow
 * receiver is logged and never delays or fails the request.
 */
import type { Logger } from 'winston';
import { errorText } from './errors.ts';

export const NOTIFY_TIMEOUT_MS = 5000;

export async function postNotification(url: string, text: string, log: Logger, timeoutMs = NOTIFY_TIMEOUT_MS): Promise<boolean> {
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text }),
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'error',
    });
    await response.body?.cancel();
    if (!response.ok) {
      log.warn('approval notification refused', { url: redact(url), status: response.status });
      return false;
    }
    return true;
  } catch (err) {
    log.warn('approval notification failed', { url: redact(url), error: errorText(err) });
    return false;
  }
}

/** incoming-webhook URLs embed their secret in the path: log only the origin */
function redact(url: string): string {
  try {
    return `${new URL(url).origin}/…`;
  } catch {
    return '(invalid URL)';
  }
}
