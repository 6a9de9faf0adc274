/** Names the sidecar gives cluster objects. Pure. */

/**
 * The AgentSession name of a recording's session id (`20261204T183500Z-1a2b3c4d` →
 * `20261204t183500z-1a2b3c4d`): a DNS subdomain name, as object names must be.
 */
export function sessionName(id: string): string {
  return id.toLowerCase();
}
