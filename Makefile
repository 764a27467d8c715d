# canarybot. Quick start on a fresh machine: `make demo`, then `make test`.

# kustomize's plugin loader imports Go's plugin package, which makes the
# linker bind every symbol at start; go-nvml's lazily bound NVML symbols
# then abort any binary that has both. go-nvml is linked into bin/gpu-agent
# only, but test binaries may still hold both; this tag removes the loader.
export GOFLAGS := -tags=kustomize_disable_go_plugin_support
export CGO_ENABLED := 1
export CGO_CFLAGS := -O2 -g -Wno-deprecated-declarations

GO ?= go
BIN := bin/canarybot
AGENT := bin/gpu-agent
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: all build image demo test fuzz bench bench-fleet vet fmt-check tools clean e2e e2e-tools

all: build

# canarybot, and the per-node GPU agent (go-nvml, cgo) as its own binary.
build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/canarybot
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(AGENT) ./cmd/gpu-agent

# Container images without a Docker daemon (internal/imagebuild, with
# go-containerregistry): canarybot, static (CGO_ENABLED=0), FROM scratch;
# gpu-agent (cgo, NVML) with the glibc files it needs from this machine;
# both run as nonroot 65532, with this machine's CA bundle. Each is run
# once from its unpacked filesystem before it is written. Writes
# bin/image/oci (an OCI image layout) and bin/image/images.tar (docker
# load, kind load image-archive), named ghcr.io/canarybot/{canarybot,gpu-agent}:IMAGE_TAG;
# IMAGE_REPO=host/path names them there and pushes them (credentials from
# ~/.docker/config.json). The first run rebuilds everything (-trimpath,
# no cgo): minutes.
IMAGE_REPO ?=
IMAGE_TAG ?= $(VERSION)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
image:
	@mkdir -p bin/image
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o bin/image/canarybot ./cmd/canarybot
	$(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o bin/image/gpu-agent ./cmd/gpu-agent
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(GO) run ./internal/imagebuild/cmd/imagebuild \
		--canarybot bin/image/canarybot --gpu-agent bin/image/gpu-agent --out bin/image \
		--repo $(or $(IMAGE_REPO),ghcr.io/canarybot) --tag $(IMAGE_TAG) --version $(VERSION) \
		--revision "$$(git rev-parse HEAD 2>/dev/null)" $(if $(IMAGE_REPO),--push)

# Runs two whole rollouts locally: v2 promoted, v3 reverted.
demo: build
	@scripts/ensure-tools.sh --demo
	./$(BIN) demo

# Unit and integration tests: real git repos and transports, the real
# Prometheus binary, the real in-process OCI registry, and the demo binary
# killed with -9 mid-rollout and resumed; then every fuzz target for
# FUZZTIME.
test: tools fmt-check vet
	$(GO) test -count=1 -timeout 20m ./...
	@$(MAKE) --no-print-directory fuzz

# Every fuzz target (found with go test -list '^Fuzz'), one at a time, for
# FUZZTIME each: about a minute on two cores at 3s. A failing input is
# left in the package's testdata/fuzz/ for plain go test to replay.
FUZZTIME ?= 3s
fuzz:
	@FUZZTIME=$(FUZZTIME) GO=$(GO) scripts/fuzz.sh

# Decision quality: every scenario × 200 seeds, canarybot's judge beside the
# seed's threshold policy on identical traces. Not part of CI (minutes).
# The shared scenarios (copied into bench/scenarios/shared) and canarybot's
# own (bench/scenarios: GPU memory creep, a steady-GPU A/A, …),
# comma-separated.
SCENARIOS ?= bench/scenarios/shared,bench/scenarios
SEEDS ?= 200
bench: build
	./$(BIN) bench --scenarios $(SCENARIOS) --seeds $(SEEDS)

# Fleet scale (docs/fleet.md), against bare repositories served by the real
# git http-backend that refuse non-fast-forward updates; prints each number
# beside its target. Sections: fleet (PLANS plans × STEPS steps in one
# repository, one process: every transition once, p99 decision → push,
# RSS), humans (100 git CLI commits during 50 rollouts), replicas (two
# processes, no lock, one SIGKILLed), big-repo (one step on 2,000 commits ×
# 500 overlays beside the git CLI), projection (10,000 plans in 100
# repositories). About 12 minutes on two cores at PLANS=1000, issue 13's
# size; PLANS=200 takes about 8. BENCH_FLEET_FLAGS passes more, e.g.
# BENCH_FLEET_FLAGS="--skip humans,replicas". Then the GitHub API cost as
# an App against the fake GitHub: COST_PLANS five-step rollouts at once,
# and idle plans (pkg/appserver TestGitHubAPICost).
COST_PLANS ?= 20
PLANS ?= 1000
STEPS ?= 5
SECTIONS ?= fleet,humans,replicas,big-repo,projection
bench-fleet: build
	./$(BIN) bench-fleet --plans $(PLANS) --steps $(STEPS) --sections $(SECTIONS) $(BENCH_FLEET_FLAGS)
	@echo "== github API cost ($(COST_PLANS) rollouts, fake GitHub) =="
	@CANARYBOT_COST_PLANS=$(COST_PLANS) $(GO) test -count=1 -run '^TestGitHubAPICost$$' -v ./pkg/appserver/ 2>&1 | \
		grep -E 'github:|^(ok|FAIL|---)' | sed 's/^ *cost_test.go:[0-9]*: //'

# The end-to-end suite on a real stack: etcd, kube-apiserver and Argo CD,
# built once from the Go module proxy and cached outside the clone
# (CANARYBOT_TOOLS, default ~/.cache/canarybot/tools; cold, the builds take
# about 20 minutes on two cores; warm, nothing is rebuilt), and Debian's
# redis-server and prometheus, installed when missing and this machine can
# (kubectl is not in Debian's archive: the script says how to get it).
e2e-tools:
	@scripts/e2e-tools.sh >/dev/null

e2e: build
	@scripts/ensure-tools.sh --e2e
	@dirs=$$(scripts/e2e-tools.sh | paste -sd: -) && \
	CANARYBOT_E2E_TOOLS=$$dirs CANARYBOT_E2E_REQUIRE=1 \
	$(GO) test -tags e2e,kustomize_disable_go_plugin_support -count=1 -timeout 40m -v ./test/e2e/...

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

# Installs Debian's prometheus and docker-registry when missing and this
# machine can; otherwise says how. (`make e2e` and `make demo` run
# scripts/ensure-tools.sh too, with --e2e and --demo.)
tools:
	@scripts/ensure-tools.sh

clean:
	rm -rf bin
