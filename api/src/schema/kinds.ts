import { GROUP, VERSION } from './common.ts';
import { agentConnectionSpec, agentConnectionStatus } from './agentconnection.ts';
import { maskingPolicySpec, maskingPolicyStatus } from './maskingpolicy.ts';
import { approvalRuleSpec, approvalRuleStatus } from './approvalrule.ts';
import { approvalRequestSpec, approvalRequestStatus } from './approvalrequest.ts';
import { agentSessionStatus } from './agentsession.ts';
import type { Schema } from './props.ts';

export interface PrinterColumn {
  readonly name: string;
  readonly type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  readonly jsonPath: string;
  readonly description: string;
  readonly priority?: number;
}

export interface KindDefinition {
  readonly kind: string;
  readonly plural: string;
  readonly singular: string;
  readonly shortNames: readonly string[];
  readonly description: string;
  readonly spec?: Schema;
  readonly status: Schema;
  readonly printerColumns: readonly PrinterColumn[];
}

const age: PrinterColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp', description: 'Time since the object was created.' };
const ready: PrinterColumn = {
  name: 'Ready',
  type: 'string',
  jsonPath: '.status.conditions[?(@.type=="Ready")].status',
  description: 'Whether the object is ready (the Ready condition).',
};

export const KINDS: readonly KindDefinition[] = [
  {
    kind: 'AgentConnection',
    plural: 'agentconnections',
    singular: 'agentconnection',
    shortNames: ['aconn'],
    description: 'AgentConnection is one PostgreSQL database or SSH server that selected agent pods may reach, only through the Airlock sidecar, which holds its credentials.',
    spec: agentConnectionSpec,
    status: agentConnectionStatus,
    printerColumns: [
      { name: 'Protocol', type: 'string', jsonPath: '.spec.protocol', description: 'postgres or ssh.' },
      { name: 'Target', type: 'string', jsonPath: '.spec.target.host', description: 'Host of the target server.' },
      { name: 'Port', type: 'integer', jsonPath: '.spec.target.port', description: 'Port of the target server.', priority: 1 },
      ready,
      { name: 'Sessions', type: 'integer', jsonPath: '.status.sessions.total', description: 'Sessions opened through this connection.' },
      age,
    ],
  },
  {
    kind: 'MaskingPolicy',
    plural: 'maskingpolicies',
    singular: 'maskingpolicy',
    shortNames: ['mpol'],
    description: 'MaskingPolicy masks sensitive values (by column, built-in detector or RE2 pattern) in the SQL results and SSH output of the connections it selects.',
    spec: maskingPolicySpec,
    status: maskingPolicyStatus,
    printerColumns: [ready, age],
  },
  {
    kind: 'ApprovalRule',
    plural: 'approvalrules',
    singular: 'approvalrule',
    shortNames: ['arule'],
    description: 'ApprovalRule allows, blocks, or holds for human approval the SQL statements and SSH commands sent through the connections it selects.',
    spec: approvalRuleSpec,
    status: approvalRuleStatus,
    printerColumns: [ready, age],
  },
  {
    kind: 'ApprovalRequest',
    plural: 'approvalrequests',
    singular: 'approvalrequest',
    shortNames: ['areq'],
    description: 'ApprovalRequest is a statement or command held by Airlock until reviewers approve or deny it with kubectl annotate. Created by Airlock.',
    spec: approvalRequestSpec,
    status: approvalRequestStatus,
    printerColumns: [
      { name: 'Connection', type: 'string', jsonPath: '.spec.connection', description: 'AgentConnection the statement was sent through.' },
      { name: 'Command', type: 'string', jsonPath: '.spec.command', description: 'The held statement or command (masked).' },
      { name: 'Phase', type: 'string', jsonPath: '.status.phase', description: 'Pending, Approved, Denied or Expired.' },
      { name: 'Requester', type: 'string', jsonPath: '.spec.requester.pod', description: 'Agent pod that asked.', priority: 1 },
      age,
    ],
  },
  {
    kind: 'AgentSession',
    plural: 'agentsessions',
    singular: 'agentsession',
    shortNames: ['asess'],
    description: 'AgentSession indexes one recorded agent session: who, through which connection, what happened, and the anchor of its tamper-evident recording. Created by Airlock.',
    status: agentSessionStatus,
    printerColumns: [
      { name: 'Pod', type: 'string', jsonPath: '.status.pod', description: 'Agent pod that opened the session.', priority: 1 },
      { name: 'Connection', type: 'string', jsonPath: '.status.connection', description: 'AgentConnection used.' },
      { name: 'Statements', type: 'integer', jsonPath: '.status.counts.statements', description: 'Statements or commands decided.' },
      { name: 'Blocked', type: 'integer', jsonPath: '.status.counts.blocked', description: 'Statements or commands refused.' },
      { name: 'Masked', type: 'integer', jsonPath: '.status.counts.maskedValues', description: 'Values masked in what was returned.' },
      { name: 'Records', type: 'integer', jsonPath: '.status.recording.records', description: 'Records in the recording\'s hash chain, up to the anchored head.' },
      { name: 'Chain Head', type: 'string', jsonPath: '.status.recording.chainHead', description: 'Hash of the last anchored record of the recording (airlock sessions verify --session checks against it).' },
      { name: 'Started', type: 'date', jsonPath: '.status.startTime', description: 'When the session started.' },
    ],
  },
];

export const API_VERSION = `${GROUP}/${VERSION}`;
export { GROUP, VERSION };
