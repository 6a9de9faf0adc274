import { DNS_SUBDOMAIN_PATTERN, arr, enumOf, int, obj, str, stringMap, stringSet, type Schema } from './props.ts';

export const GROUP = 'airlock.dev';
export const VERSION = 'v1alpha1';

export function labelSelector(description: string): Schema {
  return obj(
    `${description} An empty selector ({}) matches everything; a missing one matches nothing.`,
    {
      matchLabels: stringMap('Labels that must all be present with these exact values.'),
      matchExpressions: arr(
        'Label requirements that must all hold.',
        obj(
          'One label requirement.',
          {
            key: str('The label key the requirement applies to.', { minLength: 1 }),
            operator: enumOf('How the key relates to the values.', ['In', 'NotIn', 'Exists', 'DoesNotExist']),
            values: stringSet('The values for In and NotIn; must be empty for Exists and DoesNotExist.', str('A label value.')),
          },
          ['key', 'operator'],
          {
            'x-kubernetes-validations': [
              {
                rule: "self.operator in ['In', 'NotIn'] ? (has(self.values) && size(self.values) > 0) : (!has(self.values) || size(self.values) == 0)",
                message: 'values must be non-empty for In and NotIn, and empty for Exists and DoesNotExist',
              },
            ],
          },
        ),
        { 'x-kubernetes-list-type': 'atomic' },
      ),
    },
    [],
    { 'x-kubernetes-map-type': 'atomic' },
  );
}

export function secretRef(description: string): Schema {
  return obj(description, {
    name: str('Name of the Secret, in the namespace of the object that refers to it.', {
      minLength: 1,
      maxLength: 253,
      pattern: DNS_SUBDOMAIN_PATTERN,
    }),
  }, ['name']);
}

export function secretKeyRef(description: string, defaultKey: string): Schema {
  return obj(description, {
    name: str('Name of the Secret, in the namespace of the object that refers to it.', {
      minLength: 1,
      maxLength: 253,
      pattern: DNS_SUBDOMAIN_PATTERN,
    }),
    key: str(`Key within the Secret's data. Defaults to "${defaultKey}".`, { default: defaultKey, minLength: 1 }),
  }, ['name']);
}

/** metav1.Condition, as the Kubernetes API conventions define it. */
export const conditions: Schema = arr(
  'Current state of the object as standard Kubernetes conditions. `Ready` summarises the others.',
  obj(
    'One aspect of the current state of the object.',
    {
      type: str('Type of the condition in CamelCase, e.g. Ready.', {
        maxLength: 316,
        pattern: '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$',
      }),
      status: enumOf('Whether the condition holds: True, False or Unknown.', ['True', 'False', 'Unknown']),
      observedGeneration: int('The .metadata.generation the condition was computed from.', { minimum: 0 }),
      lastTransitionTime: str('When the condition last changed from one status to another.', { format: 'date-time' }),
      reason: str('Programmatic identifier of the last transition, in CamelCase.', {
        minLength: 1,
        maxLength: 1024,
        pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$',
      }),
      message: str('Human-readable details about the last transition.', { maxLength: 32768 }),
    },
    ['type', 'status', 'lastTransitionTime', 'reason', 'message'],
  ),
  { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'], maxItems: 16 },
);

export const observedGeneration: Schema = int('The .metadata.generation the controller last acted on.', { minimum: 0 });

export const approvers: Schema = obj(
  'Who may decide. A reviewer qualifies when listed by user name or through one of their groups, as the API server authenticates them.',
  {
    users: stringSet('User names, as the API server authenticates them (e.g. alice, system:serviceaccount:ops:bot).', str('A user name.', { minLength: 1 })),
    groups: stringSet('Group names, as the API server authenticates them (e.g. dba, system:masters).', str('A group name.', { minLength: 1 })),
  },
  [],
  {
    'x-kubernetes-validations': [
      {
        rule: '(has(self.users) ? size(self.users) : 0) + (has(self.groups) ? size(self.groups) : 0) > 0',
        message: 'at least one user or group must be listed as approver',
      },
    ],
  },
);
