#!/usr/bin/env bash
# Starts a real etcd + kube-apiserver on free loopback ports, in the background, and writes an
# admin kubeconfig. Everything lives under $CLUSTER_DIR (default .airlock/cluster).
#
#   CLUSTER_DIR=...     state: PKI, etcd data, logs, pids, ports (default .airlock/cluster)
#   KUBECONFIG_OUT=...  where the admin kubeconfig goes (default .airlock/kubeconfig)
#
# The API server runs with RBAC, a service-account issuer and signing key (projected tokens and
# the OIDC discovery/JWKS endpoints work), and the admission webhook plugins enabled. No
# controller-manager, scheduler or kubelet: objects are stored and served, pods do not run.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
dir="${CLUSTER_DIR:-$root/.airlock/cluster}"
kubeconfig="${KUBECONFIG_OUT:-$root/.airlock/kubeconfig}"
bin="$("$here/build.sh")"

if [[ -f "$dir/apiserver.pid" ]] && kill -0 "$(cat "$dir/apiserver.pid")" 2>/dev/null; then
  echo "cluster already running (state in $dir); kubeconfig: $kubeconfig" >&2
  exit 0
fi
rm -rf "$dir"
mkdir -p "$dir/pki" "$dir/etcd" "$(dirname "$kubeconfig")"

# Free loopback ports, chosen by the OS.
free_port() {
  "$root/node_modules/.bin/node" -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
etcd_client="$(free_port)"; etcd_peer="$(free_port)"; api_port="$(free_port)"
while [[ "$etcd_peer" == "$etcd_client" ]]; do etcd_peer="$(free_port)"; done
while [[ "$api_port" == "$etcd_client" || "$api_port" == "$etcd_peer" ]]; do api_port="$(free_port)"; done

# --- PKI: a cluster CA, the serving certificate, the admin client certificate, the SA key.
pki="$dir/pki"
ossl() { openssl "$@" 2>/dev/null; }
ossl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=airlock-local-ca" \
  -keyout "$pki/ca.key" -out "$pki/ca.crt"
cat > "$pki/serving.ext" <<EXT
subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc
extendedKeyUsage=serverAuth
EXT
ossl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout "$pki/apiserver.key" -out "$pki/apiserver.csr"
ossl x509 -req -in "$pki/apiserver.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 365 \
  -extfile "$pki/serving.ext" -out "$pki/apiserver.crt"
printf 'extendedKeyUsage=clientAuth\n' > "$pki/client.ext"
ossl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=airlock-admin" -keyout "$pki/admin.key" -out "$pki/admin.csr"
ossl x509 -req -in "$pki/admin.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 365 \
  -extfile "$pki/client.ext" -out "$pki/admin.crt"
ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$pki/sa.key"
ossl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub"

# --- etcd
"$bin/etcd" --name airlock --data-dir "$dir/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_client" --advertise-client-urls "http://127.0.0.1:$etcd_client" \
  --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
  --initial-cluster "airlock=http://127.0.0.1:$etcd_peer" --listen-metrics-urls "" \
  --quota-backend-bytes 1073741824 --log-level warn \
  >"$dir/etcd.log" 2>&1 &
echo $! > "$dir/etcd.pid"

# --- kube-apiserver
"$bin/kube-apiserver" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
  --etcd-servers "http://127.0.0.1:$etcd_client" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --client-ca-file "$pki/ca.crt" \
  --authorization-mode RBAC \
  --enable-admission-plugins NamespaceLifecycle,ServiceAccount,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy,ResourceQuota \
  --service-account-issuer "https://127.0.0.1:$api_port" \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --api-audiences "https://127.0.0.1:$api_port" \
  --service-cluster-ip-range 10.96.0.0/16 --endpoint-reconciler-type none \
  --anonymous-auth=true \
  --profiling=false --v=1 \
  >"$dir/apiserver.log" 2>&1 &
echo $! > "$dir/apiserver.pid"

cat > "$dir/ports.env" <<ENV
ETCD_CLIENT_PORT=$etcd_client
ETCD_PEER_PORT=$etcd_peer
APISERVER_PORT=$api_port
APISERVER_URL=https://127.0.0.1:$api_port
ENV

b64() { base64 -w0 < "$1"; }
cat > "$kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
  - name: airlock-local
    cluster:
      server: https://127.0.0.1:$api_port
      certificate-authority-data: $(b64 "$pki/ca.crt")
users:
  - name: airlock-admin
    user:
      client-certificate-data: $(b64 "$pki/admin.crt")
      client-key-data: $(b64 "$pki/admin.key")
contexts:
  - name: airlock-local
    context: { cluster: airlock-local, user: airlock-admin }
current-context: airlock-local
KC
chmod 600 "$kubeconfig"

# Ready when /readyz says so (etcd reachable, post-start hooks done, RBAC bootstrap policy in).
for _ in $(seq 1 240); do
  if ! kill -0 "$(cat "$dir/apiserver.pid")" 2>/dev/null; then
    echo "kube-apiserver exited; last lines of $dir/apiserver.log:" >&2
    tail -20 "$dir/apiserver.log" >&2
    exit 1
  fi
  if "$bin/kubectl" --kubeconfig "$kubeconfig" get --raw /readyz >/dev/null 2>&1; then
    echo "kube-apiserver $("$bin/kubectl" --kubeconfig "$kubeconfig" version -o json | sed -n 's/.*"gitVersion": "\(v[^"]*\)".*/\1/p' | tail -1) ready at https://127.0.0.1:$api_port; kubeconfig: $kubeconfig" >&2
    exit 0
  fi
  sleep 0.5
done
echo "kube-apiserver did not become ready in 120s; see $dir/apiserver.log" >&2
exit 1
