/**
 * `airlock capture`: the injected `airlock-capture` init container. Installs the iptables and
 * ip6tables rules that send the agent containers' TCP to each connection's target into the
 * sidecar (webhooks/src/capture), in the pod's network namespace, and exits.
 */
import { spawn } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { access, constants, readFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { CaptureError, captureRules, hostsToResolve, parseRedirect, parseReject, validatePlan, type CapturePlan } from '../../../webhooks/src/capture/index.ts';
import { CliError } from '../errors.ts';
import type { CliIO } from '../io.ts';

export const CAPTURE_HELP = `Usage: airlock capture --sidecar-uid <uid> --redirect <connection>=<host>:<port>:<listenPort> [--redirect ...]
                       [--reject <connection>=<port> ...] [--resolve-timeout <seconds>] [--dry-run]

Installs the transparent-capture rules in the current network namespace (the injected
airlock-capture init container runs it with NET_ADMIN and NET_RAW, as root): TCP that any
process but the sidecar's UID opens to a connection's target is redirected to the sidecar's
loopback listener. A target port used by one connection is captured whatever the destination
address; a port shared by several connections is captured per resolved IPv4 address of each
host, and any other address on that port is refused (TCP reset). IPv6 TCP to the target ports
is refused (the sidecar listens on IPv4 loopback). Rules go to the chain AIRLOCK-OUTPUT of the
nat and filter tables through 'iptables-restore --noflush' and 'ip6tables-restore --noflush'
(from PATH, else /usr/sbin or /sbin); other rules are left as they are.

Options:
      --sidecar-uid <uid>          UID of the sidecar (exempt from capture; required)
      --redirect <spec>            <connection>=<host>:<port>:<listenPort> (repeatable, at least one);
                                   host: DNS name, IPv4 address or [IPv6 address]
      --reject <spec>              <connection>=<port> (repeatable): a port where the connection's
                                   endpoints listen other than its port (a Service's targetPort);
                                   new TCP connections to it are refused, whatever the address
      --resolve-timeout <seconds>  how long host names may take to resolve (default 30)
      --dry-run                    print the rules, install nothing
  -h, --help                       show this help

Exit status: 0 rules installed (or printed); 1 a host did not resolve or the rules were refused;
2 bad arguments.
`;

export function parseCapturePlan(values: { 'sidecar-uid'?: string | undefined; redirect?: readonly string[] | undefined; reject?: readonly string[] | undefined }): CapturePlan {
  const uid = values['sidecar-uid'];
  if (uid === undefined) throw new CaptureError('MissingArgument', '--sidecar-uid <uid> is required');
  if (!/^\d+$/.test(uid)) throw new CaptureError('InvalidArgument', `--sidecar-uid must be a number (got "${uid}")`);
  return validatePlan({ sidecarUid: Number(uid), targets: (values.redirect ?? []).map(parseRedirect), rejects: (values.reject ?? []).map(parseReject) });
}

async function resolveAll(hosts: readonly string[], timeoutMs: number, io: CliIO): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  const deadline = Date.now() + timeoutMs;
  for (const host of hosts) {
    for (let attempt = 1; ; attempt++) {
      try {
        const found = await lookup(host, { all: true, family: 4 });
        out.set(host, found.map((a) => a.address));
        break;
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        if (Date.now() >= deadline) throw new CaptureError('ResolveFailed', `${host} did not resolve to an IPv4 address within ${timeoutMs / 1000}s (${String(code ?? err)}); its port is shared by several connections, so it is captured by address`);
        if (attempt === 1) io.stderr.write(`airlock capture: ${host}: ${String(code ?? err)}; retrying\n`);
        await sleep(Math.min(1000, Math.max(0, deadline - Date.now())));
      }
    }
  }
  return out;
}

/** the restore binary from PATH, else /usr/sbin or /sbin */
async function findBinary(name: string): Promise<string> {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter((d) => d !== ''), '/usr/sbin', '/sbin'];
  for (const d of dirs) {
    const file = join(d, name);
    try {
      await access(file, constants.X_OK);
      return file;
    } catch {
      // next
    }
  }
  throw new CaptureError('ApplyFailed', `${name} was not found on PATH, /usr/sbin or /sbin`);
}

async function restore(binary: string, rules: string): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(binary, ['--noflush'], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (c: string) => {
    stderr += c;
  });
  const done = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => { resolve(code); });
  });
  child.stdin.on('error', () => {
    // a binary that exits early reports through its status
  });
  child.stdin.end(rules);
  return { code: await done, stderr: stderr.trim() };
}

/** IPv6 is off in this network namespace: nothing can leave over it, so no ip6tables rules are needed */
async function ipv6Disabled(): Promise<boolean> {
  try {
    return (await readFile('/proc/sys/net/ipv6/conf/all/disable_ipv6', 'utf8')).trim() === '1';
  } catch {
    return true; // no IPv6 in this kernel or namespace
  }
}

export async function captureCommand(args: readonly string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: {
      'sidecar-uid': { type: 'string' },
      redirect: { type: 'string', multiple: true },
      reject: { type: 'string', multiple: true },
      'resolve-timeout': { type: 'string' },
      'dry-run': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help === true) {
    io.stdout.write(CAPTURE_HELP);
    return 0;
  }
  try {
    const plan = parseCapturePlan(values);
    const timeoutText = values['resolve-timeout'] ?? '30';
    const timeout = Number(timeoutText);
    if (!/^\d+(\.\d+)?$/.test(timeoutText) || timeout > 3600) throw new CaptureError('InvalidArgument', `--resolve-timeout must be seconds between 0 and 3600 (got "${timeoutText}")`);
    const addresses = await resolveAll(hostsToResolve(plan), timeout * 1000, io);
    for (const [host, ips] of addresses) io.stdout.write(`resolved ${host}: ${ips.join(', ')}\n`);
    const rules = captureRules(plan, addresses);
    for (const note of rules.notes) io.stderr.write(`airlock capture: warning: ${note}\n`);
    if (values['dry-run'] === true) {
      io.stdout.write(rules.ipv4);
      io.stdout.write(rules.ipv6);
      return 0;
    }
    const v4 = await restore(await findBinary('iptables-restore'), rules.ipv4);
    if (v4.code !== 0) throw new CaptureError('ApplyFailed', `iptables-restore refused the IPv4 rules (exit ${String(v4.code)}): ${v4.stderr}\n${rules.ipv4}`);
    io.stdout.write(`installed (iptables-restore --noflush):\n${rules.ipv4}`);
    const v6 = await restore(await findBinary('ip6tables-restore'), rules.ipv6);
    if (v6.code !== 0) {
      if (!(await ipv6Disabled())) throw new CaptureError('ApplyFailed', `ip6tables-restore refused the IPv6 rules (exit ${String(v6.code)}): ${v6.stderr}\n${rules.ipv6}`);
      io.stderr.write(`airlock capture: warning: IPv6 is disabled in this network namespace; no IPv6 rules installed (${v6.stderr})\n`);
    } else {
      io.stdout.write(`installed (ip6tables-restore --noflush):\n${rules.ipv6}`);
    }
    return 0;
  } catch (err) {
    if (err instanceof CaptureError) throw new CliError(err.code, err.message, err.code === 'InvalidArgument' || err.code === 'MissingArgument' ? 2 : 1);
    throw err;
  }
}
