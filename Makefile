# EventStream developer commands. `make run` starts a local node, `make test`
# runs every test; both install what they need first.

VENV      := .venv
PY        := $(VENV)/bin/python
TOOLS_BIN := $(CURDIR)/.tools/bin
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
# -qq: errors only (no progress, no setuptools banners from the editable builds).
PIP       := $(PY) -m pip install -qq --disable-pip-version-check
GRPCURL_VERSION := v1.9.3
GHZ_VERSION     := v0.120.0

.PHONY: install install-run tools native test-native run test test-unit lint typecheck generate check-generated breaking bench bench-ingest loadgen clean
NATIVE := server/native/libshardq

# What `make run` needs: the server's dependencies (requirements/server.txt),
# the server and SDK packages (editable) and the native core, which the server
# loads at start.
install-run: $(RUN_STAMP) native

# Everything the tests, code generation and benchmarks need besides.
install: install-run $(DEV_STAMP)

$(RUN_STAMP): requirements/server.txt server/pyproject.toml sdk/python/pyproject.toml
	@echo "Installing the server into $(VENV) (requirements/server.txt)"
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PIP) --upgrade pip
	@$(PIP) -r requirements/server.txt
	@$(PIP) --no-deps --config-settings editable_mode=compat -e sdk/python -e server
	@touch $@

$(DEV_STAMP): $(RUN_STAMP) requirements/dev.txt requirements/deploy.txt
	@echo "Installing the development tools into $(VENV) (requirements/dev.txt)"
	@$(PIP) -r requirements/dev.txt
	@touch $@

# Go-built tools the tests and benchmarks drive, from the Go module proxy:
# grpcurl, ghz (the publish benchmark also runs briefly in the tests), helm,
# kustomize and a Kubernetes control plane (tools/k8s), and the cluster test
# tools (historycheck, toxiproxy, nats-server and natscli; `make cluster-tools`).
tools: $(TOOLS_BIN)/grpcurl $(TOOLS_BIN)/ghz cluster-tools
	tools/install-k8s-tools.sh

.PHONY: cluster-tools
cluster-tools:
	tools/install-cluster-tools.sh

# `make grpcurl` / `make ghz`: one tool alone, without the rest of `make tools`.
.PHONY: grpcurl ghz
grpcurl: $(TOOLS_BIN)/grpcurl
ghz: $(TOOLS_BIN)/ghz

$(TOOLS_BIN)/grpcurl:
	GOBIN=$(TOOLS_BIN) go install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)

$(TOOLS_BIN)/ghz:
	GOBIN=$(TOOLS_BIN) go install github.com/bojand/ghz/cmd/ghz@$(GHZ_VERSION)

# The C core (libshardq), copied into the server package for ctypes.
native:
	@$(MAKE) -s --no-print-directory -C $(NATIVE) install

# C unit tests under ASan+UBSan, the MPMC stress test under TSan, bounded
# libFuzzer runs (the install script fails loudly when clang's runtimes are missing).
test-native: native
	$(NATIVE)/scripts/install-fuzz-deps.sh
	$(MAKE) -C $(NATIVE) test test-tsan fuzz

# Every system package the tests use (Debian's), checked by the files they need.
.PHONY: system-packages
system-packages:
	tools/install-system-packages.sh

run: install-run
	@$(VENV)/bin/eventstream-server --host 127.0.0.1 $(ARGS)

test: system-packages install tools lint typecheck check-generated breaking test-native coverage-raft
	PATH=$(TOOLS_BIN):$$PATH $(PY) -m pytest tests

# Line coverage of the Raft core by its unit tests, scripts and an in-process
# slice of the simulation (the full seed budget runs in `make test`); fails below 95%.
.PHONY: coverage-raft sim
coverage-raft: install
	RAFT_SIM_SEEDS=300 RAFT_SIM_JOBS=1 $(PY) -m coverage run --data-file=.coverage.raft \
	  --source=eventstream.server.raft -m pytest tests/unit/raft -q -p no:cacheprovider -k "not injected_bug"
	$(PY) -m coverage report --data-file=.coverage.raft --fail-under=95

# The Raft simulation: `make sim SEEDS=1000000 JOBS=2` runs many seeds in
# parallel; `make sim SEED=42 [BUG=forget-vote]` replays one with a trace.
SEEDS ?= 100000
JOBS  ?= 2
sim: install
	$(PY) -m eventstream.server.testing.raft_sim $(if $(SEED),--seed $(SEED) --trace,--seeds $(SEEDS) --jobs $(JOBS)) $(if $(BUG),--bug $(BUG))

test-unit: install native
	$(PY) -m pytest tests/unit

# The storage fault-injection layer over many more seeds than `make test` runs
# (each seed: one fault, a restart, every acknowledged event checked).
# FAULT_SEEDS=N sets how many.
FAULT_SEEDS ?= 300
.PHONY: test-faults
test-faults: install native
	EVENTSTREAM_FAULT_SEEDS=$(FAULT_SEEDS) $(PY) -m pytest tests/integration/test_storage_faults.py \
	  tests/integration/test_full_disk.py tests/integration/test_damaged_tail.py

# Rules that check themselves: buf lint (the API), ruff (style, imports and
# Google docstrings; ruff.toml), import-linter (the server's layering;
# server/pyproject.toml) and mypy --strict.
lint: install typecheck
	$(VENV)/bin/buf lint
	$(VENV)/bin/ruff check server/src sdk/python/src tests
	cd server && $(CURDIR)/$(VENV)/bin/lint-imports --no-cache \
	  --contract transports --contract native-public --contract generated --contract raft-stdlib \
	  --contract peer-protocol --contract cluster-shell

# mypy --strict on the server and on the SDK's hand-written code (settings in
# server/pyproject.toml and sdk/python/pyproject.toml).
typecheck: install
	cd server && $(CURDIR)/$(VENV)/bin/mypy
	cd sdk/python && $(CURDIR)/$(VENV)/bin/mypy

# Regenerates every generated file from api/ (never edit those by hand):
# Python stubs and the Go, TypeScript and Java clients under sdk/clients, and
# the peer protocol's Python stubs in the server package (buf.gen.peer.yaml).
PY_GENERATED := sdk/python/src/eventstream/v1 server/src/eventstream/peer/v1
GENERATED := $(PY_GENERATED) sdk/clients/go/gen \
             sdk/clients/typescript/src/gen sdk/clients/java/src/gen
generate: install
	tools/install-codegen-tools.sh
	rm -f $(foreach dir,$(PY_GENERATED),$(dir)/*_pb2.py $(dir)/*_pb2.pyi $(dir)/*_pb2_grpc.py)
	rm -rf $(filter-out $(PY_GENERATED),$(GENERATED))
	$(VENV)/bin/buf generate
	$(VENV)/bin/buf generate --template buf.gen.java.yaml
	$(VENV)/bin/buf generate --template buf.gen.peer.yaml

# Fails when the committed generated code differs from what `make generate` writes.
check-generated: generate
	@git diff --exit-code --stat -- $(GENERATED) || \
	  (echo "generated code is stale: run 'make generate' and commit the result" >&2; exit 1)
	@test -z "$$(git status --porcelain --untracked-files=all -- $(GENERATED))" || \
	  (echo "generated files are not committed: run 'make generate' and commit them" >&2; exit 1)

# Breaking-change check of the API against the previous commit (when there is one).
breaking: install
	@if git rev-parse -q --verify HEAD~1 >/dev/null && git cat-file -e HEAD~1:buf.yaml 2>/dev/null; then \
	  $(VENV)/bin/buf breaking --against '.git#ref=HEAD~1'; \
	else echo "buf breaking: no previous commit with an API to compare against"; fi

# Publish throughput and latency, then our rows of the priority benchmark
# (printed only; `make bench-priority` adds the peers and writes the results).
bench: install tools $(TOOLS_BIN)/ghz loadgen
	PATH=$(TOOLS_BIN):$$PATH $(PY) bench/publish_bench.py
	$(PY) bench/priority_bench.py --peers none --out -

# EventStream side by side with NATS JetStream, Redis Streams, Kafka and the
# Pub/Sub emulator (bench/peers_bench.py); writes bench/results/peers.{md,png,json}.
# Pass options with ARGS, e.g. ARGS="--peers redis --quick".
# Then the priority benchmark with its peer rows (options in PRIORITY_ARGS).
.PHONY: bench-peers
bench-peers: install native $(TOOLS_BIN)/ghz loadgen
	$(PY) -m pip install -q -r requirements/bench.txt
	tools/install-peers.sh
	PATH=$(TOOLS_BIN):$$PATH $(PY) bench/peers_bench.py $(ARGS)
	$(PY) bench/priority_bench.py $(PRIORITY_ARGS)

# The replicated cluster benchmark (bench/cluster_bench.py, about a minute):
# EventStream 3 nodes (not yet: replication is not wired) and 1 node against
# NATS JetStream R3 and R1, unary, batched and pipelined publish with fsync
# before the ack and fan-out, in the same run; writes
# bench/results/cluster.{md,png,json}.
# Pass options with ARGS, e.g. ARGS="--quick" or ARGS="--duration 8".
.PHONY: bench-cluster
bench-cluster: install native $(TOOLS_BIN)/ghz cluster-tools
	$(PY) -m pip install -q -r requirements/bench.txt
	PATH=$(TOOLS_BIN):$$PATH $(PY) bench/cluster_bench.py $(ARGS)

# Realtime latency while the batch lane floods, idle and flooded, ours over gRPC
# and TCP, NATS JetStream and Redis Streams under the same kind of flood
# (bench/priority_bench.py, about 2 minutes); writes bench/results/priority.{md,png,json}.
# Pass options with ARGS, e.g. ARGS="--baseline HEAD~1 --repeat 3" for an A/B of
# the server against an earlier revision in the same run, or ARGS="--peers none --quick".
.PHONY: bench-priority
bench-priority: install native loadgen
	$(PY) -m pip install -q -r requirements/bench.txt
	tools/install-peers.sh nats redis
	$(PY) bench/priority_bench.py $(ARGS)

# What TLS costs: publish (unary, batched) and subscribe against three servers
# at once, plaintext, mutual TLS and mutual TLS with auth (bench/tls_bench.py,
# about 3 minutes; certificates made by the script with cryptography, from
# requirements/dev.txt). Pass options with ARGS, e.g. ARGS="--duration 2
# --rounds 1" or ARGS="--markdown results.md".
.PHONY: bench-tls
bench-tls: install native
	$(PY) bench/tls_bench.py $(ARGS)

# Raw TCP/UDP ingest: the native load generator against the server, Redis
# Streams (Debian's redis-server, redis-benchmark) as the peer figure.
loadgen:
	$(MAKE) -C bench/loadgen

bench-ingest: install native loadgen
	$(PY) bench/ingest_bench.py

clean:
	rm -rf $(VENV) .tools .pytest_cache
	rm -rf sdk/clients/typescript/node_modules sdk/clients/typescript/dist sdk/clients/java/target tests/conformance/build
	$(MAKE) -C bench/loadgen clean
