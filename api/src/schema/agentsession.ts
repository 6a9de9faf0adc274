import { conditions, observedGeneration } from './common.ts';
import { int, obj, str, enumOf } from './props.ts';
import { PROTOCOLS } from '../vocab.ts';

const count = (description: string) => int(description, { minimum: 0 });

export const agentSessionStatus = obj(
  'One proxied client connection: the index entry of a recording on the PVC. Written by Airlock; garbage-collected by the connection\'s retention.',
  {
    observedGeneration,
    conditions,
    pod: str('Agent pod that opened the session.'),
    serviceAccount: str('Service account of the agent pod.'),
    connection: str('The AgentConnection used.'),
    protocol: enumOf('Protocol of the connection.', PROTOCOLS),
    startTime: str('When the session started.', { format: 'date-time' }),
    endTime: str('When the session ended; empty while it is active.', { format: 'date-time' }),
    counts: obj('What happened in the session.', {
      statements: count('Statements or commands decided.'),
      rows: count('Result rows returned to the agent.'),
      maskedValues: count('Values masked in what was returned.'),
      blocked: count('Statements or commands refused.'),
      approvals: count('Statements or commands held for approval.'),
    }),
    recording: obj('Where the recording is and how to check it.', {
      claimName: str('PersistentVolumeClaim holding the recording.'),
      path: str('Path of the recording inside the claim.'),
      chainHead: str('Hash of the last record of the recording\'s hash chain, anchored here outside the PVC; `airlock sessions verify` checks against it.', {
        pattern: '^sha256:[a-f0-9]{64}$',
      }),
      records: count('Number of records in the chain.'),
    }),
  },
);
