#!/usr/bin/env bash
# make demo: the whole Airlock story on the single node of `make cluster-up`, narrated, with the
# commands a user would type. Every step says what it does and what it expects, and stops the
# demo with "DEMO FAILED" when that does not hold.
#
#   KUBECONFIG   the node's kubeconfig (default .airlock/kubeconfig, written by make cluster-up)
#   DEMO_QUIET   1: print the steps' titles and checks, not every command's output
#
# Re-running it on the same node is fine: everything is applied, not created.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/hack/demo"
BIN="$(bash "$ROOT/hack/controlplane/build.sh")"
export KUBECONFIG="${KUBECONFIG:-$ROOT/.airlock/kubeconfig}"
NODE_DIR=/var/lib/airlock-node
VOLUME="$NODE_DIR/volumes/airlock-sessions"
SIDECAR_GID=15532
STATE="$NODE_DIR/demo" # generated credentials: on the node, removed by make cluster-down
STARTED=$SECONDS
STEP=setup

[[ -f "$KUBECONFIG" ]] || { echo "demo: no kubeconfig at $KUBECONFIG: run 'make cluster-up' first" >&2; exit 1; }
[[ -f "$ROOT/dist/images.json" ]] || { echo "demo: no images in dist/: run 'make images' first" >&2; exit 1; }

export PATH="$BIN:$ROOT/node_modules/.bin:$PATH"
export HELM_CACHE_HOME="$STATE/helm/cache" HELM_CONFIG_HOME="$STATE/helm/config" HELM_DATA_HOME="$STATE/helm/data"

if [[ -t 1 ]]; then B=$'\e[1m'; G=$'\e[32m'; R=$'\e[31m'; D=$'\e[2m'; N=$'\e[0m'; else B= G= R= D= N=; fi

step() { STEP="$1"; printf '\n%s== %s ==%s\n' "$B" "$*" "$N"; }
say() { printf '%s\n' "$*"; }
fail() {
  printf '\n%sDEMO FAILED at step "%s": %s%s\n' "$R" "$STEP" "$*" "$N" >&2
  # what a user would look at next: pods that are not ready, their events and last log lines
  {
    echo "--- pods"; kubectl get pods -A -o wide
    kubectl get pods -A --no-headers | awk '$3 !~ /^([0-9]+)\/\1$/ || $4 != "Running" {print $1, $2}' | head -5 | while read -r ns pod; do
      echo "--- $ns/$pod"; kubectl -n "$ns" describe pod "$pod" | sed -n '/^Events:/,$p' | tail -8
      kubectl -n "$ns" logs "$pod" --all-containers --tail 15 2>&1 | tail -15
    done
  } >&2 2>&1 || true
  exit 1
}
ok() { printf '%s  ✓ %s%s\n' "$G" "$*" "$N"; }

# run <command...>: prints it as typed, runs it, keeps its output in $OUT and its status in $RC
# shown as typed: an argument with anything but plain characters in single quotes
shown() {
  local a line=
  for a in "$@"; do
    if [[ "$a" =~ ^[A-Za-z0-9_./:=@+,%-]+$ ]]; then line+="$a "; else line+="'${a//\'/\'\\\'\'}' "; fi
  done
  printf '%s' "${line% }"
}
run() {
  printf '%s$ %s%s\n' "$B" "$(shown "$@")" "$N"
  set +e
  OUT="$("$@" 2>&1)"
  RC=$?
  set -e
  if [[ "${DEMO_QUIET:-0}" != 1 && -n "$OUT" ]]; then printf '%s\n' "$OUT" | sed "s/^/${D}  ${N}/"; fi
}
must() { run "$@"; [[ $RC -eq 0 ]] || fail "'$*' exited with $RC: $OUT"; }
expect() { grep -qE -- "$1" <<<"$OUT" || fail "expected /$1/ in the output ($2)"; ok "$2"; }
expect_not() { ! grep -qE -- "$1" <<<"$OUT" || fail "did not expect /$1/ in the output ($2)"; ok "$2"; }
# retry <seconds> <check function>: the check runs until it succeeds or the time is up
retry() {
  local until=$((SECONDS + $1)); shift
  until "$@"; do ((SECONDS < until)) || return 1; sleep 1; done
}

agent() { run kubectl exec -n agents deploy/planner -c agent -- "$@"; }
# TLS verified against Airlock's CA (the webhook sets PGSSLROOTCERT), the host key checked against
# the known_hosts line the webhook mounts: the agent verifies the proxy as it would the real server
PSQL=(psql -X -v ON_ERROR_STOP=0 "host=orders-db.databases.svc.cluster.local dbname=orders user=planner sslmode=verify-full")
SSH=(ssh -o BatchMode=yes -o StrictHostKeyChecking=yes ops@bastion.ops.svc.cluster.local)

# ---------------------------------------------------------------------------------------------
step "0. Install Airlock with Helm, start the targets, apply the examples, run the agent"
mkdir -p "$STATE"
chmod 0700 "$STATE"

say "Helm installs CRDs only on a first install; applying them first keeps an upgrade's CRDs current too:"
must kubectl apply --server-side --force-conflicts -f "$ROOT/charts/airlock/crds/"
must helm upgrade --install airlock "$ROOT/charts/airlock" -n airlock-system --create-namespace --wait --timeout 180s --hide-notes
must kubectl -n airlock-system rollout status deployment/airlock-operator deployment/airlock-webhook --timeout 120s
ok "operator and webhook Ready (2 replicas each)"

say "Credentials of the targets, generated here and kept in Secrets (the agent never sees them):"
if [[ ! -f "$STATE/planner-password" ]]; then
  head -c 18 /dev/urandom | base64 | tr -d '\n' | tr '+/' 'xy' > "$STATE/planner-password"
  head -c 18 /dev/urandom | base64 | tr -d '\n' | tr '+/' 'xy' > "$STATE/admin-password"
  ssh-keygen -q -t ed25519 -N '' -C airlock-sidecar -f "$STATE/agent_key"
  ssh-keygen -q -t ed25519 -N '' -C bastion -f "$STATE/ssh_host_ed25519_key"
fi
PLANNER_PASSWORD="$(cat "$STATE/planner-password")"
printf "ALTER ROLE planner_ro PASSWORD '%s';\n" "$PLANNER_PASSWORD" > "$STATE/planner.sql"
apply_secret() { kubectl create secret generic "$@" --dry-run=client -o yaml | kubectl apply -f - >/dev/null; }
kubectl create namespace databases --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl create namespace ops --dry-run=client -o yaml | kubectl apply -f - >/dev/null
apply_secret orders-db-admin -n databases --from-file=password="$STATE/admin-password" --from-file=planner.sql="$STATE/planner.sql"
apply_secret bastion-keys -n ops --from-file=authorized_keys="$STATE/agent_key.pub" --from-file=ssh_host_ed25519_key="$STATE/ssh_host_ed25519_key"
ok "Secrets orders-db-admin (databases) and bastion-keys (ops) applied"

must kubectl apply -f "$HERE/targets.yaml"
must kubectl -n databases rollout status deployment/orders-db --timeout 120s
must kubectl -n ops rollout status deployment/bastion --timeout 120s
ok "PostgreSQL (orders-db.databases) and OpenSSH (bastion.ops) run as pods behind Services"

say "The recordings volume: a directory of the node that the sidecar's group ($SIDECAR_GID) may write."
if ! mountpoint -q "$VOLUME"; then
  mkdir -p "$VOLUME"
  # a small tmpfs, so that a full volume can be shown (make cluster-down unmounts it)
  mount -t tmpfs -o size=64m,mode=2775,gid=$SIDECAR_GID airlock-sessions "$VOLUME"
fi

must kubectl apply -f "$ROOT/examples/"
say "Adjusted to these targets: the real credentials, the bastion's host key, no TLS on the demo database."
apply_secret orders-db-credentials -n agents --from-literal=username=planner_ro --from-literal=password="$PLANNER_PASSWORD"
apply_secret bastion-credentials -n agents --from-literal=username=ops --from-file=privateKey="$STATE/agent_key"
FINGERPRINT="$(ssh-keygen -lf "$STATE/ssh_host_ed25519_key.pub" | awk '{print $2}')"
must kubectl -n agents patch agentconnection bastion --type merge -p "{\"spec\":{\"ssh\":{\"hostKeyFingerprints\":[\"$FINGERPRINT\"]}}}"
must kubectl -n agents patch agentconnection orders-db --type merge -p '{"spec":{"target":{"tls":{"mode":"disable"}}}}'
must kubectl apply -f "$HERE/recordings.yaml"
must kubectl -n agents wait agentconnection --all --for=condition=Ready --timeout 60s
must kubectl -n agents get agentconnections
expect 'orders-db +postgres +[^ ]+ +True' "AgentConnection orders-db is Ready"
expect 'bastion +ssh +[^ ]+ +True' "AgentConnection bastion is Ready"

say "The operator publishes Airlock's CA and the SSH host key line for the agents (ConfigMap airlock-ca):"
has_trust() { kubectl -n agents get configmap airlock-ca >/dev/null 2>&1; }
retry 30 has_trust || fail "the operator did not create ConfigMap airlock-ca in namespace agents within 30 s"
must kubectl -n agents get configmap airlock-ca -o 'jsonpath={.data.ssh_known_hosts}'
expect 'bastion\.ops\.svc\.cluster\.local' "the known_hosts line names the SSH target"
must kubectl apply -f "$HERE/agent.yaml"
must kubectl -n agents rollout status deployment/planner --timeout 120s
ok "the agent Deployment planner is available"

# ---------------------------------------------------------------------------------------------
step "1. The sidecar is injected; the agent holds no credential"
POD="$(kubectl -n agents get pod -l app=planner --field-selector=status.phase=Running -o jsonpath='{.items[0].metadata.name}')"
must kubectl -n agents get pod "$POD" -o jsonpath='{range .spec.initContainers[*]}{.name}{"  restartPolicy="}{.restartPolicy}{"\n"}{end}'
expect '^airlock-capture' "an init container installs the capture rules"
expect '^airlock-proxy +restartPolicy=Always' "the proxy runs as a native sidecar"
must kubectl -n agents get pod "$POD" -o jsonpath='{.spec.containers[*].name}'
expect '^agent$' "the agent's own container is unchanged"
agent sh -c 'env; ls /var/run/secrets 2>&1; cat /var/lib/airlock/recordings 2>&1 | head -1'
expect_not "$PLANNER_PASSWORD" "the agent's environment does not hold the database password"
expect_not 'PRIVATE KEY' "nor the SSH key"
expect 'No such file or directory' "no service-account token, no recordings volume in the agent container"
expect '^PGSSLROOTCERT=/etc/airlock/ca/ca.crt$' "libpq verifies TLS against Airlock's CA (PGSSLROOTCERT)"
must kubectl -n agents get pod "$POD" -o yaml
expect_not "$PLANNER_PASSWORD|orders-db-credentials|bastion-credentials" "the pod spec references no credentials Secret"

# ---------------------------------------------------------------------------------------------
step "2. A SELECT through the database's real Service name (sslmode=verify-full): values masked"
agent "${PSQL[@]}" -c "SELECT name, email, phone, card_number, notes FROM customers ORDER BY id"
[[ $RC -eq 0 ]] || fail "psql failed: $OUT"
expect 'Ada Lovelace' "the rows come back, over TLS that psql verified (sslmode=verify-full)"
expect_not 'ada@example\.com|4539 1488 0343 6467|4111 1111 1111 1111|7946 0958' "emails, phone and card numbers are not in clear"
expect 'hmac:[0-9a-f]{16}' "emails are a keyed hash (joins still work)"
expect '6467' "card numbers keep their last four digits"
expect_not 'EMP-004211' "the organisation's employee ids are redacted"

# ---------------------------------------------------------------------------------------------
step "3. DROP TABLE is blocked with a clear message; the same session goes on"
agent "${PSQL[@]}" -v VERBOSITY=verbose -c "DROP TABLE customers" -c "SELECT count(*) AS customers FROM customers"
expect 'ERROR: +42501: airlock: destructive statements are not allowed on production' "DROP TABLE refused with the rule's message, as a permission error (SQLSTATE 42501)"
expect '^ +4$' "the same connection then counts 4 customers: the table is still there"

# ---------------------------------------------------------------------------------------------
step "4. An INSERT is held until a reviewer approves it with kubectl"
say "The agent's INSERT waits (running in the background)..."
INSERT_LOG="$STATE/insert.log"
BEFORE="$(kubectl -n agents get approvalrequests -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}')"
kubectl exec -n agents deploy/planner -c agent -- "${PSQL[@]}" -c "INSERT INTO orders (customer_id, item, amount) VALUES (3, 'bombe', 1939.00)" >"$INSERT_LOG" 2>&1 &
INSERT_PID=$!
trap 'kill "$INSERT_PID" 2>/dev/null || true' EXIT
# the request of this INSERT: a Pending one that was not there before
pending() {
  REQ="$(kubectl -n agents get approvalrequests -o jsonpath='{range .items[?(@.status.phase=="Pending")]}{.metadata.name}{"\n"}{end}' | grep -vxF -f <(printf '%s\n' "$BEFORE") | head -1 || true)"
  [[ -n "$REQ" ]]
}
retry 30 pending || fail "no Pending ApprovalRequest appeared within 30 s"
must kubectl -n agents get approvalrequests
expect "$REQ +.*Pending" "the request $REQ is Pending"
must kubectl -n agents get approvalrequest "$REQ" -o jsonpath='{.spec.command}{"\n"}'
expect 'INSERT INTO orders' "it shows the statement"
say "Reviewers get the chart's ClusterRole airlock-approver in the namespace (RBAC lets them try;"
say "the webhook decides whether they are one of the rule's approvers):"
must kubectl -n agents create rolebinding airlock-approvers --clusterrole airlock-approver --group dba --group sre --user mallory --dry-run=client -o yaml
kubectl apply -f - <<<"$OUT" >/dev/null
say "mallory may annotate, but is not an approver of this rule:"
run kubectl -n agents annotate approvalrequest "$REQ" airlock.dev/decision=approve --as mallory
[[ $RC -ne 0 ]] || fail "a non-approver's decision was accepted"
expect 'not an approver|approver' "mallory is refused"
say "A DBA approves:"
must kubectl -n agents annotate approvalrequest "$REQ" airlock.dev/decision=approve --as bob --as-group dba
wait "$INSERT_PID" || true
OUT="$(cat "$INSERT_LOG")"
printf '%s\n' "$OUT" | sed "s/^/${D}  ${N}/"
expect '^INSERT 0 1' "the held INSERT completed after the approval"
must kubectl -n agents get approvalrequest "$REQ"
expect 'Approved' "the request is Approved"

# ---------------------------------------------------------------------------------------------
step "5. SSH: an exec with masked output, a blocked command with exit status 126"
agent "${SSH[@]}" cat /srv/ops/customers.txt
[[ $RC -eq 0 ]] || fail "ssh exited with $RC: $OUT"
expect 'ada@example\.com' "the file is read through the sidecar (host key checked: StrictHostKeyChecking=yes)"
expect_not '4539 1488 0343 6467|AKIAIOSFODNN7EXAMPLE' "its card number and the AWS key are masked"
expect '6467' "cards keep their last four digits"
agent "${SSH[@]}" sudo reboot
[[ $RC -eq 126 ]] || fail "a blocked command exited with $RC, not 126"
ok "sudo reboot exits with status 126"
expect 'this command is never run by agents on production' "with the rule's message on stderr"

# ---------------------------------------------------------------------------------------------
step "6. Sessions: indexed in AgentSession, recordings verified against their anchor"
sessions_reported() { [[ "$(kubectl -n agents get agentsessions -o name | wc -l)" -ge 5 ]]; }
retry 60 sessions_reported || fail "fewer than 5 AgentSessions were reported within 60 s"
must kubectl -n agents get agentsessions
expect ' orders-db +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ +sha256:[0-9a-f]{64}' "PostgreSQL sessions are listed with their counts and hash-chain heads"
expect ' bastion +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ +sha256:[0-9a-f]{64}' "and SSH sessions"
SESSION="$(kubectl -n agents get agentsessions -o jsonpath='{range .items[?(@.status.protocol=="postgres")]}{.metadata.name}{" "}{.status.counts.blocked}{"\n"}{end}' | awk '$2 > 0 {print $1; exit}')"
[[ -n "$SESSION" ]] || fail "no postgres AgentSession counts a blocked statement"
ended() { [[ -n "$(kubectl -n agents get agentsession "$SESSION" -o jsonpath='{.status.endTime}')" ]]; }
retry 30 ended || fail "AgentSession $SESSION has no endTime after 30 s"
must kubectl -n agents get agentsession "$SESSION" -o jsonpath='{.status.counts}{"\n"}{.status.recording}{"\n"}'
expect '"blocked":1' "the session of step 3 counts one blocked statement"
expect '"chainHead":"sha256:[0-9a-f]{64}"' "its hash-chain head is anchored in the status"
REC_PATH="$(kubectl -n agents get agentsession "$SESSION" -o jsonpath='{.status.recording.path}')"
RECORDING="$(find "$VOLUME" -path "*${REC_PATH}" -print -quit)"
[[ -n "$RECORDING" && -f "$RECORDING" ]] || fail "the recording $REC_PATH is not on the volume $VOLUME"
say "The recording, read from the volume (a hostPath of this node):"
must airlock sessions verify "$RECORDING" --session "$SESSION" -n agents
expect 'intact|ok|verified' "the hash chain verifies and ends at the anchored head"
must airlock sessions show "$RECORDING"
expect 'DROP TABLE customers' "the timeline shows the refused DROP"
expect_not '4539 1488 0343 6467' "and holds no clear card number"

# ---------------------------------------------------------------------------------------------
step "7. A policy edited with kubectl apply takes effect in the running agent"
say "The MaskingPolicy pii gets one more rule, and nothing restarts:"
NOTES_RULE='    - name: notes              # free text about customers: never shown
      match:
        columns: ["*.customers.notes"]
      action:
        type: redact'
RULE="$NOTES_RULE" awk '{print} /^  rules:$/ {print ENVIRON["RULE"]}' "$ROOT/examples/30-masking.yaml" > "$STATE/30-masking-notes.yaml"
say "$NOTES_RULE"
must kubectl apply -f "$STATE/30-masking-notes.yaml"
T0=$SECONDS
notes_redacted() {
  OUT="$(kubectl exec -n agents deploy/planner -c agent -- "${PSQL[@]}" -At -c "SELECT notes FROM customers WHERE id = 3" 2>&1)"
  [[ "$OUT" == '[REDACTED]' ]]
}
retry 30 notes_redacted || fail "the notes column was not redacted 30 s after the apply: $OUT"
ok "notes are redacted $((SECONDS - T0)) s after kubectl apply (now: $OUT)"
must kubectl apply -f "$ROOT/examples/30-masking.yaml"

printf '\n%sThe demo held, step by step, in %d s.%s\n' "$G" "$((SECONDS - STARTED))" "$N"
# shellcheck source=../cluster/lib.sh
source "$ROOT/hack/cluster/lib.sh"
NODE_MIB="$(rss_mib)" PODS_MIB="$(pods_rss_mib)"
say "Memory of the node with Airlock installed and the demo running: $((NODE_MIB + PODS_MIB)) MiB (node processes $NODE_MIB MiB, pods $PODS_MIB MiB)"
say "Airlock keeps running: export KUBECONFIG=$KUBECONFIG; kubectl get agentsessions,approvalrequests -n agents"
say "'make cluster-down' removes the node and everything the demo made."
