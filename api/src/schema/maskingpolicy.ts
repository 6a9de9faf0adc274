import { conditions, labelSelector, observedGeneration } from './common.ts';
import { DNS_LABEL_PATTERN, arr, enumOf, int, obj, str, stringSet } from './props.ts';
import { DETECTORS, MASK_ACTIONS } from '../vocab.ts';

const match = obj(
  'What the rule applies to. Every field given must hold; within a list, any entry may match.',
  {
    columns: stringSet(
      'Globs over schema.table.column of SQL result columns (e.g. "*.customers.email", "public.users.*"). Not used for SSH output.',
      str('A glob: * matches within one name part, ? one character.', { minLength: 1, maxLength: 512 }),
      { minItems: 1 },
    ),
    detectors: stringSet(
      'Built-in detectors that find sensitive values inside text, validated by checksum where the format has one.',
      enumOf('A detector id.', DETECTORS),
      { minItems: 1 },
    ),
    pattern: str('An RE2 regular expression (linear time, no backreferences); every match in a value is masked.', {
      minLength: 1,
      maxLength: 4096,
    }),
  },
  [],
  {
    'x-kubernetes-validations': [
      {
        rule: 'has(self.columns) || has(self.detectors) || has(self.pattern)',
        message: 'match must set at least one of columns, detectors or pattern',
      },
    ],
  },
);

const action = obj(
  'How a matched value is masked. When several rules match a value, the strongest wins: null > redact > hash > partial.',
  {
    type: enumOf(
      'redact: replace with a fixed marker. partial: keep the first/last N characters, mask the rest. hash: keyed HMAC, deterministic so joins still work. null: SQL NULL (for SSH output, the marker).',
      MASK_ACTIONS,
    ),
    keepFirst: int('With partial: characters kept at the start.', { minimum: 0, maximum: 64 }),
    keepLast: int('With partial: characters kept at the end.', { minimum: 0, maximum: 64 }),
  },
  ['type'],
  {
    'x-kubernetes-validations': [
      {
        rule: "self.type == 'partial' || (!has(self.keepFirst) && !has(self.keepLast))",
        message: 'keepFirst and keepLast are only allowed with type partial',
      },
      {
        rule: "self.type != 'partial' || has(self.keepFirst) || has(self.keepLast)",
        message: 'type partial needs keepFirst or keepLast',
      },
    ],
  },
);

export const maskingPolicySpec = obj(
  'Masking rules applied to SQL result values and SSH output of the connections this policy selects.',
  {
    connectionSelector: labelSelector('Labels of the AgentConnections (in this namespace) this policy applies to.'),
    unknownLineage: enumOf(
      'What happens to a SQL result column whose lineage Airlock cannot determine from the statement (a function or operator it does not know, a view, a function returning rows, FETCH of a cursor, EXECUTE of a prepared statement). Mask (default): the value is treated as derived from every masked column and gets the strictest action of the column rules. Refuse: a statement with such a column is refused with SQLSTATE 42501 before it runs (a column read through a view, known only once its rows are described, is still masked). When several policies select a connection, Refuse wins.',
      ['Mask', 'Refuse'],
      { default: 'Mask' },
    ),
    rules: arr(
      'Ordered masking rules.',
      obj('One masking rule.', {
        name: str('Name of the rule, unique in the policy; recordings and decisions cite it.', {
          pattern: DNS_LABEL_PATTERN,
          maxLength: 63,
        }),
        match,
        action,
      }, ['name', 'match', 'action']),
      { minItems: 1, maxItems: 256, 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] },
    ),
  },
  ['connectionSelector', 'rules'],
);

export const maskingPolicyStatus = obj('Observed state of the policy, written by the operator.', {
  observedGeneration,
  conditions,
  connections: stringSet('AgentConnections this policy currently selects.', str('An AgentConnection name.')),
});
