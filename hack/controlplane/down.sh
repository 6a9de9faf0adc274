#!/usr/bin/env bash
# Stops the local control plane started by up.sh and removes its state and kubeconfig.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
dir="${CLUSTER_DIR:-$root/.airlock/cluster}"
kubeconfig="${KUBECONFIG_OUT:-$root/.airlock/kubeconfig}"
for name in apiserver etcd; do
  pidfile="$dir/$name.pid"
  [[ -f "$pidfile" ]] || continue
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
done
rm -rf "$dir" "$kubeconfig"
echo "local control plane stopped" >&2
