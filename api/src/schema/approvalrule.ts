import { approvers, conditions, labelSelector, observedGeneration } from './common.ts';
import { DNS_LABEL_PATTERN, DURATION_PATTERN, arr, bool, enumOf, int, obj, str, stringSet } from './props.ts';
import { ACTIONS, SQL_CLASSES } from '../vocab.ts';

const glob = (what: string) => str(`A glob over ${what}: * matches any run of characters, ? one character.`, { minLength: 1, maxLength: 1024 });

const sqlMatch = obj(
  'Match on SQL statements. Every field given must hold; within a list, any entry may match.',
  {
    classes: stringSet('Statement classes, as the policy engine derives them with the PostgreSQL parser.', enumOf('A statement class.', SQL_CLASSES), { minItems: 1 }),
    tables: stringSet('Globs over schema.table of the relations the statement touches (an unqualified name is taken as public).', glob('schema.table'), { minItems: 1 }),
    functions: stringSet('Globs over schema.function of the functions the statement calls.', glob('schema.function'), { minItems: 1 }),
  },
  [],
  {
    'x-kubernetes-validations': [
      { rule: 'has(self.classes) || has(self.tables) || has(self.functions)', message: 'sql must set at least one of classes, tables or functions' },
    ],
  },
);

const sshMatch = obj(
  'Match on SSH command lines. Lines are parsed with a shell grammar and wrappers (sh -c, sudo, env, xargs, …) unwrapped; a line that cannot be resolved matches every rule.',
  {
    commands: stringSet('Globs matched against each simple command of the line (e.g. "rm -rf *", "sudo *").', glob('a command with its arguments'), { minItems: 1 }),
  },
  ['commands'],
);

const approval = obj(
  'Who must approve, how many, and for how long the statement waits.',
  {
    approvers,
    required: int('How many distinct approvers must approve (N of M). One deny decides.', { minimum: 1, maximum: 16, default: 1 }),
    timeout: str('How long the statement is held before the request expires and the statement fails, as a duration.', {
      pattern: DURATION_PATTERN,
      default: '10m',
    }),
    requireReason: bool('Reviewers must give airlock.dev/reason with their decision.', { default: false }),
  },
  ['approvers'],
);

const rule = obj(
  'One approval rule.',
  {
    name: str('Name of the rule, unique in the ApprovalRule; decisions and recordings cite it.', { pattern: DNS_LABEL_PATTERN, maxLength: 63 }),
    match: obj(
      'What the rule applies to: exactly one of sql or ssh.',
      { sql: sqlMatch, ssh: sshMatch },
      [],
      { 'x-kubernetes-validations': [{ rule: 'has(self.sql) != has(self.ssh)', message: 'match must set exactly one of sql or ssh' }] },
    ),
    action: enumOf('Allow, Block, or RequireApproval. Across all matching rules the strictest wins: Block > RequireApproval > Allow.', ACTIONS),
    message: str('Message the agent sees when the rule blocks it.', { maxLength: 1024 }),
    approval,
  },
  ['name', 'match', 'action'],
  {
    'x-kubernetes-validations': [
      { rule: "self.action != 'RequireApproval' || has(self.approval)", message: 'approval is required when action is RequireApproval', fieldPath: '.approval', reason: 'FieldValueRequired' },
      { rule: "self.action == 'RequireApproval' || !has(self.approval)", message: 'approval is only allowed when action is RequireApproval', fieldPath: '.approval', reason: 'FieldValueForbidden' },
    ],
  },
);

export const approvalRuleSpec = obj(
  'Rules that allow, block or hold for approval the statements and commands agents send through the connections this object selects.',
  {
    connectionSelector: labelSelector('Labels of the AgentConnections (in this namespace) these rules apply to.'),
    subjects: obj('Restricts the rules to some agents. Without it the rules apply to every agent of the selected connections.', {
      serviceAccounts: stringSet('Service accounts (in this namespace) of the agent pods the rules apply to.', str('A service account name.', { minLength: 1 }), {
        minItems: 1,
      }),
    }),
    rules: arr('Ordered rules. Every matching rule contributes; the strictest action wins.', rule, {
      minItems: 1,
      maxItems: 256,
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['name'],
    }),
  },
  ['connectionSelector', 'rules'],
);

export const approvalRuleStatus = obj('Observed state of the rule set, written by the operator.', {
  observedGeneration,
  conditions,
  connections: stringSet('AgentConnections these rules currently apply to.', str('An AgentConnection name.')),
});
