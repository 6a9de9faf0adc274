#!/usr/bin/env bash
# Imports the OCI image tarballs of a directory (default dist/) into the running node's containerd,
# so pods use them with imagePullPolicy IfNotPresent or Never. Without a running node: nothing to do
# (cluster-up imports dist/ itself).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
from="${1:-$root/dist}"
if [[ -z "$(pid_of containerd)" || ! -S "$CONTAINERD_SOCK" ]]; then
  log "no node runs: images stay in $from (cluster-up imports them)"
  exit 0
fi
for tarball in "$from"/*.oci.tar; do
  [[ -f "$tarball" ]] || continue
  ctr --address "$CONTAINERD_SOCK" -n k8s.io images import "$tarball" >/dev/null
  log "imported $(basename "$tarball") into the node"
done
