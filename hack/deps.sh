#!/usr/bin/env bash
# Installs the Debian packages the build and tests use, when missing (apt-get, as root).
set -euo pipefail
# command -> Debian package
declare -A need=(
  [openssl]=openssl
  [curl]=curl
  [nm]=binutils
)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
[[ -f /etc/ssl/certs/ca-certificates.crt ]] || missing+=(ca-certificates)
# PostgreSQL server and client (the e2e tests run a real server as the postgres system user)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
# PgBouncer (bench-pg compares against it), OpenSSH server and client (the SSH sidecar's tests)
command -v pgbouncer >/dev/null 2>&1 || [[ -x /usr/sbin/pgbouncer ]] || missing+=(pgbouncer)
[[ -x /usr/sbin/sshd ]] || missing+=(openssh-server)
command -v ssh >/dev/null 2>&1 || missing+=(openssh-client)
# The single-node Kubernetes (hack/cluster): containerd + runc + CNI plugins, iptables for kube-proxy
# and the egress guard, conntrack for kube-proxy, iproute2 for the bridge; busybox-static goes into
# the test images (hack/images).
command -v containerd >/dev/null 2>&1 || missing+=(containerd)
command -v runc >/dev/null 2>&1 || [[ -x /usr/sbin/runc ]] || missing+=(runc)
[[ -x /usr/lib/cni/bridge ]] || missing+=(containernetworking-plugins)
command -v iptables >/dev/null 2>&1 || [[ -x /usr/sbin/iptables ]] || missing+=(iptables)
command -v conntrack >/dev/null 2>&1 || [[ -x /usr/sbin/conntrack ]] || missing+=(conntrack)
command -v ip >/dev/null 2>&1 || [[ -x /usr/sbin/ip ]] || missing+=(iproute2)
[[ -x /bin/busybox ]] || missing+=(busybox-static)
# asciinema (the SSH recordings are asciicast v2; tests check that it replays them)
command -v asciinema >/dev/null 2>&1 || missing+=(asciinema)
if [[ ${#missing[@]} -eq 0 ]]; then exit 0; fi
if [[ "$(id -u)" != 0 ]]; then
  echo "deps: missing Debian packages: ${missing[*]}; install them (sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
