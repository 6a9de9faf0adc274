/** SSH proxy: under construction (issue 5). */
import { SidecarError } from '../errors.ts';
import type { ProxyOptions, RunningProxy } from '../proxy.ts';

export function startSshProxy(options: ProxyOptions): Promise<RunningProxy> {
  return Promise.reject(new SidecarError('ConfigInvalid', `the SSH proxy is not available yet (connection ${options.upstream.name})`));
}
