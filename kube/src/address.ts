/** host:port as a listen flag gives it (--metrics-addr, --listen, ...). */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/**
 * `host:port` or `[ipv6]:port` (port 0 picks a free one); undefined when the text is not that.
 * A bare IPv6 address needs its brackets: `::1:80` is ambiguous.
 */
export function parseHostPort(text: string): HostPort | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (m === null || host === undefined || host === '' || !Number.isInteger(port) || port > 65535) return undefined;
  return { host, port };
}
