#!/usr/bin/env bash
# Stops the single-node cluster that up.sh started, even a half-started one, and removes every trace
# it left on the machine: pods and their network namespaces (through the runtime, so CNI tears them
# down), processes and containerd's shims, mounts, the bridge and route, iptables chains, cgroups,
# the kernel settings it changed (put back as they were), its state and kubeconfig.
# Safe to run when nothing runs; a second run finds nothing to do.
set -uo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[[ "$(id -u)" == 0 ]] || { echo "cluster-down: must run as root" >&2; exit 1; }

stop() { # component: TERM, up to 10 s, then KILL
  local pid
  pid="$(pid_of "$1")"
  [[ -n "$pid" ]] || return 0
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  log "$1 (pid $pid) did not stop in 10 s: killing it"
  kill -KILL "$pid" 2>/dev/null
  sleep 0.2
}

# 1. kubelet first, so nothing restarts the pods being removed; then every pod sandbox through CRI
# (containerd runs CNI DEL and removes the network namespace), then the rest of the node.
stop kube-proxy
stop kubelet
crictl="$(ls "$root"/.airlock/cache/controlplane/*/bin/crictl 2>/dev/null | head -1)"
if [[ -n "$(pid_of containerd)" && -S "$CONTAINERD_SOCK" && -n "$crictl" ]]; then
  "$crictl" --runtime-endpoint "unix://$CONTAINERD_SOCK" --timeout 30s rmp --all --force >/dev/null 2>&1 \
    || log "crictl could not remove every pod; removing what is left by hand"
fi
for c in coredns kube-scheduler kube-controller-manager containerd kube-apiserver etcd; do stop "$c"; done

# 2. containerd's shims outlive containerd; containers they still run are killed with them.
runc_root="$RUN_DIR/runc/k8s.io"
if [[ -d "$runc_root" ]]; then
  for id in $(runc --root "$runc_root" list -q 2>/dev/null); do
    runc --root "$runc_root" delete --force "$id" >/dev/null 2>&1 || true
  done
fi
shims="$(pgrep -f "containerd-shim-runc-v2 .*-address $CONTAINERD_SOCK" || true)"
if [[ -n "$shims" ]]; then
  # shellcheck disable=SC2086
  kill -KILL $shims 2>/dev/null || true
  sleep 0.3
fi

# 3. mounts under the node's tree (deepest first): kubelet volumes, container root filesystems,
# sandbox /dev/shm, network namespace files.
if [[ -d "$NODE_DIR" ]]; then
  for _ in 1 2 3; do
    mounts="$(awk -v d="$NODE_DIR" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r)"
    [[ -n "$mounts" ]] || break
    while read -r m; do
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done <<< "$mounts"
  done
fi
# network namespaces the runtime made outside the tree (none with netns_mounts_under_state_dir; a
# half-started node may have made one before that setting took effect)
if [[ -f "$NODE_DIR/host-before/netns" ]]; then
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
    grep -qx "$ns" "$NODE_DIR/host-before/netns" || { [[ "$ns" == cni-* ]] && ip netns delete "$ns" 2>/dev/null; }
  done
fi

# 4. network: the bridge (with any veth left on it), the service route, iptables chains.
for veth in $(ip -o link show master "$BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
  ip link delete "$veth" 2>/dev/null || true
done
ip link delete "$BRIDGE" 2>/dev/null || true
ip route delete "$SERVICE_CIDR" 2>/dev/null || true
ip route delete unreachable "$SERVICE_CIDR" 2>/dev/null || true # a node started before the route went to the bridge
# Rewrite each table without the node's chains and the rules that jump to them; other rules stay.
clean_tables() { # iptables-save iptables-restore
  local dump filtered
  dump="$("$1" 2>/dev/null)" || return 0
  grep -qE "(^:|-[AjgI] )(KUBE-|CNI-|AIRLOCK-NODE)" <<< "$dump" || return 0
  filtered="$(awk -v pat="$CHAIN_PATTERN" '
    /^:/ { name = substr($1, 2); if (name ~ pat) next }
    /^-A / {
      if ($2 ~ pat) next
      for (i = 3; i < NF; i++) if (($i == "-j" || $i == "-g") && $(i + 1) ~ pat) next
    }
    { print }' <<< "$dump")"
  "$2" <<< "$filtered" || log "$2 could not remove the node's chains"
}
clean_tables iptables-save iptables-restore
clean_tables ip6tables-save ip6tables-restore

# 5. cgroups kubelet made for pods (deepest first; empty once their processes are gone).
for ctl in /sys/fs/cgroup/*/; do
  [[ -d "$ctl/kubepods" ]] || continue
  find "$ctl/kubepods" -depth -type d -exec rmdir {} \; 2>/dev/null
  [[ -d "$ctl/kubepods" ]] && log "cgroup $ctl/kubepods still has processes"
done

# 6. kernel settings back to what they were before up.sh.
if [[ -f "$NODE_DIR/host-before/sysctl" ]]; then
  while IFS='=' read -r key value; do
    [[ -n "$key" && -f "/proc/sys/$key" ]] || continue
    [[ "$(cat "/proc/sys/$key")" == "$value" ]] || echo "$value" > "/proc/sys/$key" 2>/dev/null || log "could not restore $key=$value"
  done < "$NODE_DIR/host-before/sysctl"
  # paths that kubelet or the runtime create when missing
  for d in /var/log/pods /var/log/containers; do
    if [[ -d "$d" ]] && ! grep -qx "$d" "$NODE_DIR/host-before/paths" 2>/dev/null; then rm -rf "$d"; fi
  done
fi

# 7. state and kubeconfig.
kubeconfig="$(cat "$NODE_DIR/kubeconfig.path" 2>/dev/null || true)"
if [[ -n "$kubeconfig" && -f "$kubeconfig" ]] && grep -q "server: https://$NODE_IP:$APISERVER_PORT" "$kubeconfig"; then
  rm -f "$kubeconfig"
fi
if [[ -d "$NODE_DIR" ]]; then
  if awk -v d="$NODE_DIR" 'index($2, d) == 1 {found = 1} END {exit !found}' /proc/self/mounts; then
    log "some mounts under $NODE_DIR could not be removed; leaving the directory"
    exit 1
  fi
  rm -rf "$NODE_DIR"
fi
log "node stopped and removed"
