/** The operator's listen flags (--metrics-addr, --control-addr) as host and port. */
import { parseHostPort, type HostPort } from '@airlock/kube';
import { OperatorError } from './errors.ts';

export function parseAddress(text: string): HostPort {
  const address = parseHostPort(text);
  if (address === undefined) throw new OperatorError('InvalidAddress', `address "${text}" is not host:port`);
  return address;
}
