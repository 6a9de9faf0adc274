/**
 * Where a target's own endpoints listen. A connection's target is often a Service
 * (`orders-db.databases.svc`), and transparent capture redirects every connection to its port.
 * When the Service forwards that port to another one on its pods (port 22 → targetPort 2222), an
 * agent could dial a backend pod's address on the targetPort and reach the target unproxied: those
 * ports must be refused too. Pure: the caller gives what the API server holds (the Service and its
 * EndpointSlices), from informer caches.
 */
/** what is read of a Service (a V1Service has it) */
export interface ServicePorts {
  readonly spec?: { readonly ports?: readonly { readonly name?: string; readonly port: number; readonly protocol?: string; readonly targetPort?: unknown }[] };
}

/** what is read of an EndpointSlice (a V1EndpointSlice has it) */
export interface SlicePorts {
  readonly ports?: readonly { readonly name?: string; readonly port?: number; readonly protocol?: string }[];
}

export interface ServiceLookup {
  service(namespace: string, name: string): ServicePorts | undefined;
  /** the EndpointSlices of a Service (label kubernetes.io/service-name) */
  endpointSlices(namespace: string, service: string): readonly SlicePorts[];
}

/**
 * The Service a host name designates, from a pod in `namespace`: `name`, `name.ns`,
 * `name.ns.svc`, `name.ns.svc.<clusterDomain>` (with or without the trailing dot), as a pod's
 * resolver search path reads them. Anything else (an IP, an outside name) is no Service.
 */
export function serviceOfHost(host: string, namespace: string, clusterDomain: string): { readonly namespace: string; readonly name: string } | undefined {
  const h = host.toLowerCase().replace(/\.$/, '');
  const labels = h.split('.');
  const domain = clusterDomain.toLowerCase().replace(/\.$/, '');
  const label = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
  let name: string | undefined;
  let ns: string | undefined;
  if (labels.length === 1) [name, ns] = [labels[0], namespace];
  else if (labels.length === 2) [name, ns] = [labels[0], labels[1]];
  else if (labels.length === 3 && labels[2] === 'svc') [name, ns] = [labels[0], labels[1]];
  else if (labels.length > 3 && labels[2] === 'svc' && labels.slice(3).join('.') === domain) [name, ns] = [labels[0], labels[1]];
  if (name === undefined || ns === undefined || !label.test(name) || !label.test(ns)) return undefined;
  return { namespace: ns, name };
}

/**
 * Ports other than `port` on which the endpoints of the Service behind `host` accept what the
 * Service serves on `port`: its numeric targetPort, and for a named one the ports its
 * EndpointSlices give that name. Empty when the host is no Service, the Service does not exist
 * (yet), or it forwards to the same port.
 */
export function backendPorts(target: { readonly host: string; readonly port: number }, namespace: string, clusterDomain: string, lookup: ServiceLookup): number[] {
  const ref = serviceOfHost(target.host, namespace, clusterDomain);
  if (ref === undefined) return [];
  const svc = lookup.service(ref.namespace, ref.name);
  if (svc === undefined) return [];
  const out = new Set<number>();
  for (const sp of svc.spec?.ports ?? []) {
    if (sp.port !== target.port || (sp.protocol ?? 'TCP') !== 'TCP') continue;
    const tp = sp.targetPort;
    if (typeof tp === 'number') out.add(tp);
    else if (tp === undefined) out.add(sp.port);
    else if (typeof tp === 'string' && /^\d+$/.test(tp)) out.add(Number(tp));
    // a named targetPort, and whatever the endpoints really use: the slices' port of that Service port's name
    for (const slice of lookup.endpointSlices(ref.namespace, ref.name)) {
      for (const ep of slice.ports ?? []) {
        if ((ep.name ?? '') === (sp.name ?? '') && (ep.protocol ?? 'TCP') === 'TCP' && typeof ep.port === 'number') out.add(ep.port);
      }
    }
  }
  out.delete(target.port);
  return [...out].filter((p) => Number.isInteger(p) && p >= 1 && p <= 65535).sort((a, b) => a - b);
}
