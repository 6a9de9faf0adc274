/**
 * The startup phase's pure parts: what the agent's StartupMessage is checked for, the
 * session_start record it makes, and the greeting the agent gets once the upstream has logged
 * in (a NegotiateProtocolVersion when it asked for a newer minor version or for protocol
 * extensions, then AuthenticationOk; the server's own ParameterStatus, BackendKeyData and
 * ReadyForQuery follow through the normal path). No I/O.
 */
import type { UpstreamConfig } from '../config.ts';
import { authenticationOk } from './backend.ts';
import { ProtocolError } from './errors.ts';
import { PROTOCOL_3_0, type FrontendMessage } from './frontend.ts';
import { frontendMessage } from './wire.ts';

export type StartupMessage = Extract<FrontendMessage, { type: 'StartupMessage' }>;

/** Throws unless the agent speaks protocol 3 (any minor version: it is negotiated down). */
export function checkProtocol(m: StartupMessage): void {
  const major = m.protocolVersion >>> 16;
  if (major !== 3) throw new ProtocolError(`unsupported frontend protocol ${major}.${m.protocolVersion & 0xffff}: Airlock speaks 3.0`);
}

export interface SessionStart {
  readonly session: string;
  readonly client: string;
  readonly pod?: string | undefined;
  readonly serviceAccount?: string | undefined;
  readonly policyDigest: string | null;
}

/** The session_start record of a session. */
export function sessionStartRecord(m: StartupMessage, upstream: UpstreamConfig, s: SessionStart): { type: 'session_start' } & Record<string, unknown> {
  return {
    type: 'session_start',
    session: s.session,
    connection: upstream.name,
    namespace: upstream.namespace,
    protocol: 'postgres',
    client: s.client,
    ...(s.pod !== undefined ? { pod: s.pod } : {}),
    ...(s.serviceAccount !== undefined ? { serviceAccount: s.serviceAccount } : {}),
    agentUser: m.parameters['user'] ?? '',
    agentDatabase: m.parameters['database'] ?? '',
    applicationName: m.parameters['application_name'] ?? '',
    target: `${upstream.host}:${String(upstream.port)}/${upstream.database ?? ''}`,
    upstreamUser: upstream.credentials.username,
    policyDigest: s.policyDigest,
  };
}

/** What the agent is sent once the upstream has logged in. */
export function greeting(m: StartupMessage): Buffer {
  const greet: Buffer[] = [];
  const unknown = Object.keys(m.parameters).filter((k) => k.startsWith('_pq_.'));
  if ((m.protocolVersion & 0xffff) !== 0 || unknown.length > 0) {
    // NegotiateProtocolVersion: we speak 3.0 and none of the protocol extensions
    const body = Buffer.from(unknown.map((u) => `${u}\0`).join(''), 'utf8');
    const head = Buffer.alloc(8);
    head.writeInt32BE(PROTOCOL_3_0, 0);
    head.writeInt32BE(unknown.length, 4);
    greet.push(frontendMessage('v', Buffer.concat([head, body])));
  }
  greet.push(authenticationOk());
  return Buffer.concat(greet);
}
