# Shared by up.sh and down.sh: where the single-node cluster lives and what it occupies.
# Sourced, not run.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

# Everything the node writes lives under NODE_DIR (state, sockets, PKI, logs, kubelet and
# containerd roots), so cluster-down removes one tree. Host-global effects that cannot live there
# (bridge, routes, iptables chains, sysctls, cgroups, network namespaces) are listed in down.sh.
NODE_DIR="${AIRLOCK_NODE_DIR:-/var/lib/airlock-node}"
RUN_DIR="$NODE_DIR/run"
PKI="$NODE_DIR/pki"
LOGS="$NODE_DIR/logs"
KUBECONFIG_OUT="${KUBECONFIG_OUT:-$root/.airlock/kubeconfig}"
CONTAINERD_SOCK="$RUN_DIR/containerd/containerd.sock"

NODE_NAME=airlock-node
BRIDGE=airlock0
POD_CIDR=10.244.0.0/24
# The node's address is the pod bridge's gateway: pods reach the API server, kubelet and DNS on it,
# and nothing of the node listens on the machine's own network interfaces.
NODE_IP=10.244.0.1
SERVICE_CIDR=10.96.0.0/16
KUBERNETES_SERVICE_IP=10.96.0.1
CLUSTER_DOMAIN=cluster.local

# Every port the node listens on, as address:port name (checked free before anything starts).
ETCD_CLIENT_PORT=2379
ETCD_PEER_PORT=2380
APISERVER_PORT=6443
PORTS=(
  "127.0.0.1:$ETCD_CLIENT_PORT etcd"
  "127.0.0.1:$ETCD_PEER_PORT etcd-peer"
  "$NODE_IP:$APISERVER_PORT kube-apiserver"
  "127.0.0.1:10257 kube-controller-manager"
  "127.0.0.1:10259 kube-scheduler"
  "$NODE_IP:10250 kubelet"
  "127.0.0.1:10248 kubelet-healthz"
  "127.0.0.1:10249 kube-proxy-metrics"
  "127.0.0.1:10256 kube-proxy-healthz"
  "$NODE_IP:53 coredns"
  "127.0.0.1:10253 coredns-health"
  "127.0.0.1:10254 coredns-ready"
)

# The processes up.sh starts, in the order down.sh stops them.
COMPONENTS=(kube-proxy kubelet coredns kube-scheduler kube-controller-manager containerd kube-apiserver etcd)

# Kernel settings the node changes (ip_forward for service traffic between pods; kubelet sets the
# others at start); up.sh saves their values and down.sh puts them back.
SYSCTLS=(
  net/ipv4/ip_forward
  net/bridge/bridge-nf-call-iptables
  net/ipv4/conf/all/route_localnet
  vm/overcommit_memory
  vm/panic_on_oom
  kernel/panic
  kernel/panic_on_oops
  kernel/keys/root_maxkeys
  kernel/keys/root_maxbytes
)

# iptables chains of the node: kube-proxy's and kubelet's (KUBE-), CNI plugins' (CNI-), ours.
CHAIN_PATTERN='^(KUBE-|CNI-|AIRLOCK-NODE)'

log() { echo "cluster: $*" >&2; }

pid_of() { # component -> pid when it runs, else nothing
  local f="$RUN_DIR/$1.pid"
  [[ -f "$f" ]] || return 0
  local pid
  pid="$(cat "$f")"
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi
}

running_components() {
  local c
  for c in "${COMPONENTS[@]}"; do [[ -n "$(pid_of "$c")" ]] && echo "$c"; done
  return 0
}

rss_mib() { # sum of the resident memory of the node's processes and containerd's shims, MiB
  local pids total=0 p kb
  pids="$(for c in "${COMPONENTS[@]}"; do pid_of "$c"; done; pgrep -f "containerd-shim-runc-v2 .*-address $CONTAINERD_SOCK" || true)"
  for p in $pids; do
    kb="$(awk '/^VmRSS:/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0)"
    total=$(( total + ${kb:-0} ))
  done
  echo $(( total / 1024 ))
}

pods_rss_mib() { # resident memory of every container of every pod (the kubepods cgroup), MiB
  awk '$1 == "total_rss" {print int($2 / 1048576)}' /sys/fs/cgroup/memory/kubepods/memory.stat 2>/dev/null || echo 0
}
