# rivetgo: make help lists the targets.
GO ?= go
# Count-based: a time-based -fuzztime can fail with "context deadline
# exceeded" when the deadline lands during input minimization.
FUZZTIME ?= 100000x

.PHONY: help test deps engine clients test-race lint fuzz model conformance conformance-engine conformance-engine-ci conformance-engine-cell bench bench-report bench-peer bench-engine bench-memory million run soak fault-long

help: ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

run: ## run the demo on the embedded store
	$(GO) run ./cmd/rivet

test: deps lint test-race fuzz conformance conformance-engine-ci ## everything CI runs (installs Chromium if missing)

# Browser tests (inspector, chat example) drive Debian's Chromium; install it
# when it is missing. The Go and npm dependencies fetch themselves.
deps: engine clients ## install rivet-engine and the official clients (npm) and, if missing, Chromium for the browser tests (apt-get; needs root or sudo)
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing chromium (browser tests)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# The Rivet Engine binary for internal/enginetest: npm install (not ci, for
# the same reason as conformance below) of @rivetkit/engine-cli, pinned by
# internal/enginetest/npm/package-lock.json. The Linux build is a static
# musl binary: no loader to install.
engine: ## install rivet-engine 2.3.19 for the engine tests (needs npm)
	cd internal/enginetest/npm && npm install --no-audit --no-fund --loglevel=error

# The official clients: the conformance suite and the Go tests that drive
# them through the engine (runner_test.go) use them.
clients: ## install the official RivetKit clients for the conformance suite (needs npm)
	cd conformance && npm install --no-audit --no-fund --loglevel=error

test-race: ## all tests with the race detector
	$(GO) test -race -count=1 ./...

lint: ## go vet and a gofmt check
	$(GO) vet ./...
	@out=$$(gofmt -l $$($(GO) list -f "{{.Dir}}" ./...)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

fuzz: ## run every Fuzz target in the module for FUZZTIME executions each
	@set -e; grep -rEo --exclude-dir=node_modules --include='*_test.go' '^func Fuzz[A-Za-z0-9_]+' . | sort | \
	while IFS=: read -r file fn; do \
	  fn=$${fn#func }; pkg=./$$(dirname $${file#./}); \
	  echo "fuzz $$pkg $$fn"; \
	  $(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 200x $$pkg; \
	done

# The model-based tests' long form (docs/RELIABILITY.md, "Model-based
# tests"); go test runs a few seeds of each by default. MODEL_SEEDS
# sequences of MODEL_OPS operations on memory, embedded and PostgreSQL,
# MODEL_ENGINE_SEEDS on a real engine (a fresh engine each, ~15 s).
MODEL_SEEDS ?= 200
MODEL_OPS ?= 400
MODEL_ENGINE_SEEDS ?= 20
model: ## the model-based tests' long run: MODEL_SEEDS random sequences per driver against the reference model (~40 min)
	MODEL_SEEDS=$(MODEL_SEEDS) MODEL_OPS=$(MODEL_OPS) MODEL_ENGINE_SEEDS=$(MODEL_ENGINE_SEEDS) \
	  $(GO) test -count=1 -timeout 4h -run '^TestModel(Engine)?$$' .

# npm install, not npm ci: npm ci rejects this lockfile because npm leaves
# the other platforms' optional binaries of rivetkit out of it; install
# still takes every version from the lockfile.
conformance: clients ## the official RivetKit clients against rivet serve --example fixtures (needs node, npm)
	cd conformance && npm test

# The same suite through a real rivet-engine (file store) with
# rivet serve --example fixtures as its runner (conformance/README.md):
# ONE engine and runner shared by every test file and cell
# (conformance/engine-cell.mjs), CONFORMANCE_ENGINE_JOBS test files side by
# side, all six cells by default (or name them: 2.3.19/bare,2.3.11/json).
# It prints where the time went and the CPU time the engine, the runner and
# the tests used. Not part of `make test` (conformance/README.md, "Where
# the time goes, and the cost").
CONFORMANCE_ENGINE_CELLS ?= all
CONFORMANCE_ENGINE_JOBS ?= 4
conformance-engine: engine clients ## the conformance suite through ONE rivet-engine, rivet serve as its runner (needs node, npm)
	cd conformance && CONFORMANCE_ENGINE_JOBS=$(CONFORMANCE_ENGINE_JOBS) \
	  RIVET_CONFORMANCE_ONLY=$(if $(filter all,$(CONFORMANCE_ENGINE_CELLS)),,$(CONFORMANCE_ENGINE_CELLS)) node engine-cell.mjs

# The CI form, part of `make test`: one cell, the first CONFORMANCE_SUBSET
# runnable tests of every suite (conformance/README.md, "Where the time
# goes, and the cost"): 85 tests, ~1 minute on an idle 2-core machine.
CONFORMANCE_SUBSET ?= 3
conformance-engine-ci: engine clients ## a subset of the suite through the engine that covers every test file (one cell)
	cd conformance && CONFORMANCE_ENGINE_JOBS=2 CONFORMANCE_SUBSET=$(CONFORMANCE_SUBSET) \
	  RIVET_CONFORMANCE_ONLY=2.3.19/bare node engine-cell.mjs

CONFORMANCE_ENGINE_CELL ?= 2.3.19/bare
conformance-engine-cell: ## one cell of the suite through the engine (CONFORMANCE_ENGINE_CELL, default 2.3.19/bare)
	$(MAKE) conformance-engine CONFORMANCE_ENGINE_CELLS=$(CONFORMANCE_ENGINE_CELL)

bench: ## the in-process benchmarks recorded in BENCHMARKS.md
	$(GO) test -run '^$$' -bench . -benchtime 2s ./ ./rivetdriver/...

bench-report: ## every bench/ scenario on the baseline and rivet serve (~4-7 min; BENCHMARKS.md)
	$(GO) run ./bench -scenario all -target baseline,serve

bench-peer: ## RivetKit 2.3.19 side by side with rivet serve and the baseline (needs node, npm; ~6-8 min)
	bash bench/peer/run.sh

bench-engine: ## rivet serve embedded, rivetgo's and RivetKit 2.3.19's runners behind rivet-engine (needs `make engine`, node, npm; ~25 min)
	bash bench/peer/run.sh -scenario engine -target engine

bench-memory: ## memory per actor and connection, cold start, 10x growth rows on rivet serve (BENCHMARKS.md "Memory and growth"; ~6 min)
	$(GO) run ./bench -scenario memory -target serve

million: ## 1,000,000 actors created on the embedded store, max_awake_actors at its default, heap sampled (docs/RELIABILITY.md; ~10 min)
	RIVET_MEASURE_ACTORS=1000000 $(GO) test -count=1 -timeout 60m -v -run TestManyActorsBoundedMemory .

FAULT_SEEDS ?= 100
FAULT_ENGINE_SEEDS ?= 2
fault-long: ## fault-injected storage over memory, embedded and PostgreSQL with FAULT_SEEDS seeds each, and the engine's KV in runner mode with FAULT_ENGINE_SEEDS (an engine each) (docs/RELIABILITY.md; ~FAULT_SEEDS x 3 s + FAULT_ENGINE_SEEDS x 40 s)
	RIVET_FAULT_SEEDS=$(FAULT_SEEDS) RIVET_FAULT_ENGINE=$(FAULT_ENGINE_SEEDS) bash -o pipefail -c "$(GO) test -race -count=1 -timeout 0 -v -run 'TestFaults|TestEmbedded' ./rivetdriver/rivetfault/ | grep -E '^(---|ok|FAIL|PASS)|FAULTS|_test.go: '"

# The crash soak's long form (docs/RELIABILITY.md, "Crash soak"): mixed
# load against a server process killed with SIGKILL and restarted
# SOAK_KILLS times per backend, then an audit. SOAK_FOR ends a backend's
# kills early once that much time has passed (a kill through the engine
# takes ~7-20 s on the shared test machine, so the engine's 1,000 take
# hours: run it in chunks, the engine subtest alone with a SOAK_SEED each,
# side by side, docs/RELIABILITY.md); SOAK_SEED replays kill points; SOAK_SKIP_POSTGRES=1 and
# SOAK_SKIP_ENGINE=1 leave a backend out. CI runs the short form (a few
# kills each) in go test.
SOAK_KILLS ?= 1000
SOAK_FOR ?= 60m
soak: ## crash soak: SOAK_KILLS (1000) kill -9s per backend (embedded, PostgreSQL, engine runner) under mixed load, then an audit; SOAK_FOR (60m) caps each backend
	SOAK_KILLS=$(SOAK_KILLS) SOAK_FOR=$(SOAK_FOR) $(GO) test -count=1 -timeout 0 -v -run '^TestCrashSoak$$' ./internal/soak/
