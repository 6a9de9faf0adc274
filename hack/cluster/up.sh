#!/usr/bin/env bash
# Starts a real single-node Kubernetes on this machine: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, containerd + runc + CNI bridge, kubelet, kube-proxy and
# CoreDNS, all in the background, and writes an admin kubeconfig. Versions: hack/controlplane/versions.env.
#
#   AIRLOCK_NODE_DIR=...  the node's state (default /var/lib/airlock-node)
#   KUBECONFIG_OUT=...    where the admin kubeconfig goes (default .airlock/kubeconfig)
#
# Pods live on the bridge airlock0 (10.244.0.0/24); the node's own address is the bridge's gateway
# 10.244.0.1, where the API server, kubelet and DNS listen. Services: 10.96.0.0/16. Pod traffic to
# anything outside the node is rejected, and cluster DNS answers only for cluster.local.
# hack/cluster/down.sh stops it all and removes every trace.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
t0=$(date +%s%N)
elapsed() { local ms=$(( ($(date +%s%N) - t0) / 1000000 )); printf '%d.%d' $(( ms / 1000 )) $(( ms % 1000 / 100 )); }

fail() {
  echo "cluster-up: $*" >&2
  echo "cluster-up: the node's state is kept in $NODE_DIR for inspection; 'make cluster-down' removes it" >&2
  exit 1
}

[[ "$(id -u)" == 0 ]] || { echo "cluster-up: must run as root (it starts kubelet and containerd)" >&2; exit 1; }

# --- one node per machine
if running="$(running_components)" && [[ -n "$running" ]]; then
  echo "cluster-up: a node is already running ($(echo "$running" | tr '\n' ' ')) with its state in $NODE_DIR;" \
    "its kubeconfig is $(cat "$NODE_DIR/kubeconfig.path" 2>/dev/null || echo "$NODE_DIR/admin.kubeconfig"). 'make cluster-down' stops it." >&2
  exit 1
fi
if [[ -e "$NODE_DIR" ]] || ip link show "$BRIDGE" >/dev/null 2>&1; then
  log "leftovers of an earlier node found (nothing of it runs): cleaning them first"
  bash "$here/down.sh"
fi

# --- what the node needs from the machine
for cmd in containerd containerd-shim-runc-v2 runc ctr iptables iptables-save iptables-restore ip6tables ip openssl ss curl; do
  command -v "$cmd" >/dev/null 2>&1 || { echo "cluster-up: '$cmd' is missing; 'make deps' installs the Debian packages" >&2; exit 1; }
done
[[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/loopback ]] \
  || { echo "cluster-up: the CNI plugins are missing in /usr/lib/cni; 'make deps' installs containernetworking-plugins" >&2; exit 1; }
bin="$(bash "$root/hack/controlplane/build.sh")"
for spec in "${PORTS[@]}"; do
  addr="${spec% *}"; name="${spec#* }"; port="${addr##*:}"
  # taken when something listens on that address or on every address, for TCP or UDP
  holder="$(ss -Hlntup 2>/dev/null | awk -v a="$addr" -v p=":$port" '
    { local_addr = $5; if (local_addr == a || local_addr == "0.0.0.0" p || local_addr == "*" p || local_addr == "[::]" p) { print $NF; exit } }')"
  if [[ -n "$holder" ]]; then
    echo "cluster-up: port $port ($name, on $addr) is already in use by $holder" >&2
    echo "cluster-up: stop what holds it; the node needs: $(printf '%s ' "${PORTS[@]%% *}")" >&2
    exit 1
  fi
done

mkdir -p "$NODE_DIR" "$RUN_DIR" "$PKI" "$LOGS" "$NODE_DIR/etcd" "$NODE_DIR/cni/net.d" "$NODE_DIR/cni/ipam" \
  "$NODE_DIR/kubelet" "$NODE_DIR/pod-logs" "$NODE_DIR/containerd" "$NODE_DIR/config" "$(dirname "$KUBECONFIG_OUT")"
echo "$KUBECONFIG_OUT" > "$NODE_DIR/kubeconfig.path"

# --- what this machine looked like, so down.sh puts it back
mkdir -p "$NODE_DIR/host-before"
for s in "${SYSCTLS[@]}"; do
  [[ -f "/proc/sys/$s" ]] && echo "$s=$(cat "/proc/sys/$s")"
done > "$NODE_DIR/host-before/sysctl"
ip netns list 2>/dev/null | awk '{print $1}' > "$NODE_DIR/host-before/netns"
for d in /var/log/pods /var/log/containers /var/run/netns /run/netns; do [[ -e "$d" ]] && echo "$d"; done > "$NODE_DIR/host-before/paths" || true

# --- network: the bridge and its gateway address, a route that keeps unanswered service addresses
# on this machine, and pod traffic kept on the node
echo 1 > /proc/sys/net/ipv4/ip_forward
echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables
ip link add "$BRIDGE" type bridge
ip addr add "$NODE_IP/24" dev "$BRIDGE"
ip link set "$BRIDGE" up
# Service addresses: kube-proxy DNATs them in nat OUTPUT, which runs after the route lookup of a
# packet this machine sends (the API server calling a webhook Service). The range routes to the
# bridge, from the gateway's address: a Service address reaches its pods, an unanswered one stays on
# the bridge (an `unreachable` route would fail the lookup before kube-proxy's rules ever run).
ip route add "$SERVICE_CIDR" dev "$BRIDGE" src "$NODE_IP"
iptables -N AIRLOCK-NODE-EGRESS
iptables -A AIRLOCK-NODE-EGRESS -s "$POD_CIDR" -o "$BRIDGE" -j RETURN
iptables -A AIRLOCK-NODE-EGRESS -s "$POD_CIDR" -j REJECT --reject-with icmp-net-prohibited
iptables -I FORWARD 1 -j AIRLOCK-NODE-EGRESS

# --- PKI: one CA; EC keys (fast to make); the service-account signing key is RSA (RS256 tokens)
ossl() { openssl "$@" 2>/dev/null; }
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 -subj "/CN=airlock-node-ca" \
  -keyout "$PKI/ca.key" -out "$PKI/ca.crt"
# cert NAME SUBJECT EXTENSIONS
cert() {
  printf '%b\n' "$3" > "$PKI/$1.ext"
  ossl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "$2" -keyout "$PKI/$1.key" -out "$PKI/$1.csr"
  ossl x509 -req -in "$PKI/$1.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial -days 365 \
    -extfile "$PKI/$1.ext" -out "$PKI/$1.crt"
  rm -f "$PKI/$1.csr" "$PKI/$1.ext"
}
client='extendedKeyUsage=clientAuth'
cert apiserver "/CN=kube-apiserver" "subjectAltName=IP:$NODE_IP,IP:$KUBERNETES_SERVICE_IP,IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$CLUSTER_DOMAIN\nextendedKeyUsage=serverAuth"
cert kubelet-serving "/CN=$NODE_NAME" "subjectAltName=IP:$NODE_IP,DNS:$NODE_NAME\nextendedKeyUsage=serverAuth"
cert admin "/O=system:masters/CN=airlock-admin" "$client"
cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "$client"
cert kube-controller-manager "/CN=system:kube-controller-manager" "$client"
cert kube-scheduler "/CN=system:kube-scheduler" "$client"
cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" "$client"
cert kube-proxy "/CN=system:kube-proxy" "$client"
cert coredns "/CN=system:airlock-coredns" "$client"
ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$PKI/sa.key"
ossl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub"

server="https://$NODE_IP:$APISERVER_PORT"
b64() { base64 -w0 < "$1"; }
kubeconfig() { # NAME -> $NODE_DIR/config/NAME.kubeconfig with NAME's client certificate
  cat > "$2" <<KC
apiVersion: v1
kind: Config
clusters:
  - name: airlock-node
    cluster:
      server: $server
      certificate-authority-data: $(b64 "$PKI/ca.crt")
users:
  - name: $1
    user:
      client-certificate-data: $(b64 "$PKI/$1.crt")
      client-key-data: $(b64 "$PKI/$1.key")
contexts:
  - name: airlock-node
    context: { cluster: airlock-node, user: $1 }
current-context: airlock-node
KC
  chmod 600 "$2"
}
for who in kube-controller-manager kube-scheduler kubelet kube-proxy coredns; do kubeconfig "$who" "$NODE_DIR/config/$who.kubeconfig"; done
kubeconfig admin "$NODE_DIR/admin.kubeconfig"
cp "$NODE_DIR/admin.kubeconfig" "$KUBECONFIG_OUT"
chmod 600 "$KUBECONFIG_OUT"
kubectl() { "$bin/kubectl" --kubeconfig "$NODE_DIR/admin.kubeconfig" "$@"; }

# start NAME COMMAND... : in the background, in its own session (so it outlives make), logs under $LOGS
start() {
  local name="$1"; shift
  setsid "$@" >"$LOGS/$name.log" 2>&1 < /dev/null &
  echo $! > "$RUN_DIR/$name.pid"
}
# wait_for NAME SECONDS COMMAND... : until COMMAND succeeds; fails naming NAME and its log
wait_for() {
  local name="$1" limit="$2"; shift 2
  local deadline=$(( $(date +%s) + limit ))
  until "$@" >/dev/null 2>&1; do
    if [[ -z "$(pid_of "$name")" ]]; then
      tail -20 "$LOGS/$name.log" >&2 || true
      fail "$name exited; its log: $LOGS/$name.log (last lines above)"
    fi
    if (( $(date +%s) > deadline )); then
      tail -20 "$LOGS/$name.log" >&2 || true
      fail "$name was not ready after ${limit}s; its log: $LOGS/$name.log (last lines above)"
    fi
    sleep 0.2
  done
}

# --- containerd (its own root, state, socket and runc root; CNI config from $NODE_DIR)
cat > "$NODE_DIR/cni/net.d/10-airlock.conflist" <<CNI
{
  "cniVersion": "0.4.0",
  "name": "airlock",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "$POD_CIDR", "gateway": "$NODE_IP" }]],
        "routes": [{ "dst": "0.0.0.0/0" }],
        "dataDir": "$NODE_DIR/cni/ipam"
      }
    }
  ]
}
CNI
pause_image="airlock.dev/pause:$("$root/node_modules/.bin/node" -p 'require(process.argv[1]).version' "$root/package.json")"
cat > "$NODE_DIR/config/containerd.toml" <<TOML
version = 2
root = "$NODE_DIR/containerd/root"
state = "$RUN_DIR/containerd"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$RUN_DIR/containerd/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_image"
  # this machine's root lacks CAP_SYS_RESOURCE: without it every sandbox fails in runc (oom_score_adj)
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$RUN_DIR/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$NODE_DIR/cni/net.d"
TOML
start containerd containerd --config "$NODE_DIR/config/containerd.toml"

# --- etcd
start etcd "$bin/etcd" --name airlock --data-dir "$NODE_DIR/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "airlock=http://127.0.0.1:$ETCD_PEER_PORT" --listen-metrics-urls "" \
  --quota-backend-bytes 2147483648 --log-level warn

# --- kube-apiserver, on the node address so pods reach it through the kubernetes Service
issuer="https://kubernetes.default.svc.$CLUSTER_DOMAIN"
start kube-apiserver "$bin/kube-apiserver" \
  --bind-address "$NODE_IP" --advertise-address "$NODE_IP" --secure-port "$APISERVER_PORT" \
  --etcd-servers "http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
  --client-ca-file "$PKI/ca.crt" \
  --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority "$PKI/ca.crt" --kubelet-preferred-address-types InternalIP \
  --authorization-mode Node,RBAC \
  --enable-admission-plugins NodeRestriction,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy,ResourceQuota \
  --service-account-issuer "$issuer" \
  --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
  --api-audiences "$issuer,https://kubernetes.default.svc" \
  --service-cluster-ip-range "$SERVICE_CIDR" \
  --allow-privileged=true \
  --anonymous-auth=true \
  --profiling=false --v=1

# --- CoreDNS on the node address, authoritative for the cluster domain only: a name outside it
# gets REFUSED (nothing is forwarded off the machine)
cat > "$NODE_DIR/config/Corefile" <<COREFILE
$CLUSTER_DOMAIN:53 in-addr.arpa:53 ip6.arpa:53 {
    bind $NODE_IP
    errors
    health 127.0.0.1:10253
    ready 127.0.0.1:10254
    kubernetes $CLUSTER_DOMAIN in-addr.arpa ip6.arpa {
        kubeconfig $NODE_DIR/config/coredns.kubeconfig airlock-node
        pods insecure
    }
    cache 5
}
COREFILE

wait_for containerd 30 test -S "$CONTAINERD_SOCK"
# The pod sandbox image: the static pause program, imported (no registry).
node_bin="$root/node_modules/.bin/node"
mkdir -p "$NODE_DIR/images"
"$node_bin" "$root/hack/images/build.ts" pause --pause-bin "$bin/pause" --out "$NODE_DIR/images/pause.oci.tar" >/dev/null \
  || fail "could not build the pause image"
ctr --address "$CONTAINERD_SOCK" -n k8s.io images import "$NODE_DIR/images/pause.oci.tar" >/dev/null \
  || fail "could not import the pause image into containerd"

wait_for kube-apiserver 120 kubectl get --raw /readyz
log "kube-apiserver ready at $server ($(elapsed) s)"

# CoreDNS's identity may read what the kubernetes plugin watches, and nothing else.
kubectl apply -f - >/dev/null <<'RBAC'
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: "airlock:coredns" }
rules:
  - apiGroups: [""]
    resources: [services, namespaces, pods]
    verbs: [list, watch]
  - apiGroups: [discovery.k8s.io]
    resources: [endpointslices]
    verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: "airlock:coredns" }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "airlock:coredns" }
subjects:
  - { apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:airlock-coredns" }
RBAC
start coredns "$bin/coredns" -conf "$NODE_DIR/config/Corefile"

# --- kube-controller-manager: service-account tokens, each namespace's default ServiceAccount and
# kube-root-ca.crt, Deployments/ReplicaSets, garbage collection, node lifecycle
start kube-controller-manager "$bin/kube-controller-manager" \
  --kubeconfig "$NODE_DIR/config/kube-controller-manager.kubeconfig" \
  --authentication-kubeconfig "$NODE_DIR/config/kube-controller-manager.kubeconfig" \
  --authorization-kubeconfig "$NODE_DIR/config/kube-controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port 10257 \
  --root-ca-file "$PKI/ca.crt" --service-account-private-key-file "$PKI/sa.key" --use-service-account-credentials \
  --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
  --service-cluster-ip-range "$SERVICE_CIDR" --allocate-node-cidrs=false \
  --leader-elect=false --profiling=false --v=1

start kube-scheduler "$bin/kube-scheduler" \
  --kubeconfig "$NODE_DIR/config/kube-scheduler.kubeconfig" \
  --authentication-kubeconfig "$NODE_DIR/config/kube-scheduler.kubeconfig" \
  --authorization-kubeconfig "$NODE_DIR/config/kube-scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port 10259 --leader-elect=false --profiling=false --v=1

# --- kubelet. Pods resolve through cluster DNS only (its resolv.conf names no outside server).
echo "nameserver $NODE_IP" > "$NODE_DIR/config/resolv.conf"
cat > "$NODE_DIR/config/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: true }
  x509: { clientCAFile: $PKI/ca.crt }
authorization: { mode: Webhook }
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
imageServiceEndpoint: unix://$CONTAINERD_SOCK
# this machine: hybrid cgroups (v1 controllers), swap not refused, cgroupfs (no systemd)
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
clusterDNS: [$NODE_IP]
clusterDomain: $CLUSTER_DOMAIN
resolvConf: $NODE_DIR/config/resolv.conf
podLogsDir: $NODE_DIR/pod-logs
# images are imported, never pulled: never garbage-collect them
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: { memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%" }
serializeImagePulls: false
maxPods: 110
YAML
start kubelet "$bin/kubelet" --config "$NODE_DIR/config/kubelet.yaml" \
  --kubeconfig "$NODE_DIR/config/kubelet.kubeconfig" --root-dir "$NODE_DIR/kubelet" \
  --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --v=1

# --- kube-proxy (iptables); conntrack sysctls left as they are; node ports only on the node address
cat > "$NODE_DIR/config/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: { kubeconfig: $NODE_DIR/config/kube-proxy.kubeconfig }
hostnameOverride: $NODE_NAME
mode: iptables
clusterCIDR: $POD_CIDR
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["$NODE_IP/32"]
conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s }
YAML
start kube-proxy "$bin/kube-proxy" --config "$NODE_DIR/config/kube-proxy.yaml" --v=1

node_ready() { [[ "$(kubectl get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]; }
wait_for kubelet 90 node_ready
log "node $NODE_NAME Ready ($(elapsed) s)"
wait_for coredns 30 curl -fsS http://127.0.0.1:10254/ready
wait_for kube-controller-manager 60 kubectl get configmap kube-root-ca.crt -n default
wait_for kube-controller-manager 60 kubectl get serviceaccount default -n default
wait_for kube-proxy 30 curl -fsS http://127.0.0.1:10256/healthz

# Images already built by `make images` are imported too.
bash "$here/import-images.sh" "$root/dist"

log "ready in $(elapsed) s: $(kubectl version -o json 2>/dev/null | sed -n 's/.*"gitVersion": "\(v[^"]*\)".*/\1/p' | tail -1), node $NODE_NAME, memory of the node's processes $(rss_mib) MiB"
log "kubeconfig: $KUBECONFIG_OUT (API server $server); 'make cluster-down' stops it"
