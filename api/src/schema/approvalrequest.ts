import { approvers, conditions, observedGeneration } from './common.ts';
import { arr, bool, enumOf, int, obj, str, stringSet } from './props.ts';
import { APPROVAL_PHASES, DECISIONS, PROTOCOLS, SQL_CLASSES } from '../vocab.ts';

export const approvalRequestSpec = obj(
  'A statement or command held by Airlock until reviewers decide. Written by Airlock; immutable. Reviewers decide with `kubectl annotate approvalrequest <name> airlock.dev/decision=approve` (or deny, optionally airlock.dev/reason=...).',
  {
    connection: str('The AgentConnection the statement was sent through.', { minLength: 1 }),
    protocol: enumOf('Protocol of the connection.', PROTOCOLS),
    requester: obj('The agent that asked.', {
      pod: str('Name of the agent pod.'),
      serviceAccount: str('Service account of the agent pod.'),
      session: str('Name of the AgentSession the statement belongs to.'),
    }, ['pod']),
    command: str('The statement or command line, with sensitive values masked.', { maxLength: 65536 }),
    classes: stringSet('SQL classes of the statement (empty for SSH).', enumOf('A statement class.', SQL_CLASSES)),
    rule: obj('The rule that required approval.', {
      approvalRule: str('Name of the ApprovalRule.'),
      name: str('Name of the rule within it.'),
    }, ['approvalRule', 'name']),
    approvers,
    required: int('How many distinct approvers must approve.', { minimum: 1, maximum: 16 }),
    requireReason: bool('Whether reviewers must give a reason.'),
    expiresAt: str('When the request expires if not decided.', { format: 'date-time' }),
  },
  ['connection', 'protocol', 'requester', 'command', 'rule', 'approvers', 'required', 'expiresAt'],
  { 'x-kubernetes-validations': [{ rule: 'self == oldSelf', message: 'spec is immutable' }] },
);

export const approvalRequestStatus = obj('Decision state, written by Airlock from reviewers\' annotations.', {
  observedGeneration,
  phase: enumOf('Pending until decided; Approved when enough approvers approved; Denied on any deny; Expired past expiresAt.', APPROVAL_PHASES),
  decisions: arr(
    'Decisions recorded so far, with the reviewer identity taken from the admission request.',
    obj('One reviewer\'s decision.', {
      user: str('User name of the reviewer, as authenticated by the API server.'),
      groups: stringSet('Groups of the reviewer at the time of the decision.', str('A group name.')),
      decision: enumOf('approve or deny.', DECISIONS),
      reason: str('Reason the reviewer gave.', { maxLength: 1024 }),
      time: str('When the decision was made.', { format: 'date-time' }),
    }, ['user', 'decision', 'time']),
    { maxItems: 32, 'x-kubernetes-list-type': 'atomic' },
  ),
  conditions,
});
