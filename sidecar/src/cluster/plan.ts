/**
 * Which listeners to start, stop or keep when a new bundle arrives. Pure.
 *
 * A connection keeps its listener (only its policy is swapped, running sessions go on) while its
 * protocol, port and recordings directory stay; otherwise the listener is restarted. Two
 * connections on one port: the one already listening keeps it, else the first by name; the
 * other is not served (a conflict).
 */
import { compareCodeUnits } from '@airlock/api';

export interface ListenerSpec {
  readonly protocol: 'postgres' | 'ssh';
  readonly listenPort: number;
  readonly recordingsDir: string;
}

export interface ListenerPlan {
  /** listeners to close (removed, or restarted with another spec) */
  readonly stop: readonly string[];
  /** listeners to open (new, or restarted) */
  readonly start: readonly string[];
  /** listeners that stay; their policy is swapped */
  readonly keep: readonly string[];
  readonly conflicts: readonly { readonly name: string; readonly port: number; readonly with: string }[];
}

export function sameSpec(a: ListenerSpec, b: ListenerSpec): boolean {
  return a.protocol === b.protocol && a.listenPort === b.listenPort && a.recordingsDir === b.recordingsDir;
}

export function planListeners(running: ReadonlyMap<string, ListenerSpec>, wanted: ReadonlyMap<string, ListenerSpec>): ListenerPlan {
  const unchanged = [...wanted.keys()].filter((n) => {
    const r = running.get(n);
    const w = wanted.get(n);
    return r !== undefined && w !== undefined && sameSpec(r, w);
  });
  const others = [...wanted.keys()].filter((n) => !unchanged.includes(n)).sort(compareCodeUnits);
  const ports = new Map<number, string>();
  const stop: string[] = [];
  const start: string[] = [];
  const keep: string[] = [];
  const conflicts: { name: string; port: number; with: string }[] = [];
  for (const name of [...unchanged.sort(compareCodeUnits), ...others]) {
    const w = wanted.get(name) as ListenerSpec;
    const holder = ports.get(w.listenPort);
    if (holder !== undefined) {
      conflicts.push({ name, port: w.listenPort, with: holder });
      continue;
    }
    ports.set(w.listenPort, name);
    if (unchanged.includes(name)) keep.push(name);
    else start.push(name);
  }
  for (const name of [...running.keys()].sort(compareCodeUnits)) {
    if (!keep.includes(name)) stop.push(name);
  }
  return { stop, start, keep, conflicts };
}
