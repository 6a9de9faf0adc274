/** PostgreSQL proxy: under construction (issue 4). */
import { SidecarError } from '../errors.ts';
import type { ProxyOptions, RunningProxy } from '../proxy.ts';

export function startPgProxy(options: ProxyOptions): Promise<RunningProxy> {
  return Promise.reject(new SidecarError('ConfigInvalid', `the PostgreSQL proxy is not available yet (connection ${options.upstream.name})`));
}
