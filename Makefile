# ecskv: the single entry point for building, running and testing.
GO       ?= go
BIN      := $(CURDIR)/bin
PKGS     := $(shell $(GO) list ./... | grep -v /e2e) $(shell $(GO) list ./e2e/sim/etcdmodel ./e2e/peers)
# The packages that take -bin-dir (the simulator, its etcd model and the
# peers benchmark do not).
E2E_PKGS := $(shell $(GO) list ./e2e/... | grep -v -e /e2e/sim -e /e2e/peers)
FUZZTIME ?= 30s
# --version of the binaries: the nearest tag (or commit) and the commit.
LDFLAGS  := -X github.com/ecskv/ecskv/common/cliutil.version=$(shell git describe --tags --always --dirty 2>/dev/null) \
	-X github.com/ecskv/ecskv/common/cliutil.commit=$(shell git rev-parse --short=12 HEAD 2>/dev/null)
DATA     ?= ./data
N        ?= 5

.PHONY: all help deps tools peer-tools screenshots build image multihost k8s-lint k8s-schemas systemd-lint run test unit sim e2e chaos bench-failover bench-peers bench-redis profile proto proto-tools lint fmt vet bench fuzz clean

all: build

## help: list the targets and what they do
help:
	@sed -n -e 's/^## \([a-z0-9-]*:\)/\1/p' -e 's/^## /    /p' $(firstword $(MAKEFILE_LIST))

## deps: download every Go module the build and tests need, and the tools
## the end-to-end tests drive (Prometheus, Chromium, redis-cli)
deps: tools
	$(GO) mod download

## tools: install Prometheus (prometheus, promtool), headless Chromium and
## Redis (redis-cli for the Redis protocol's tests, redis-server for its
## byte-for-byte comparison) from Debian's packages when missing
## (RUNLEVEL=1 keeps apt from starting redis-server)
tools:
	@missing=""; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v redis-cli >/dev/null || missing="$$missing redis-tools"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		$$SUDO env RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

## build: compile ecs, kvserver, kvclient and kvbench into bin/
build:
	@mkdir -p $(BIN)
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/ ./ecs/cmd/ecs ./kvserver/cmd/kvserver ./kvclient/cmd/kvclient ./kvclient/cmd/kvbench

## image: the container image $(IMAGE) (default ecskv:dev), FROM scratch: static
## binaries (CGO_ENABLED=0) of ecs, kvserver, kvclient, kvbench and an etcd built
## from the etcd module at go.mod's version, in bin/image/bin (they run on the
## host too); the build context is bin/image; nothing is pulled
IMAGE     ?= ecskv:dev
IMAGE_DIR := $(BIN)/image
image:
	@command -v docker >/dev/null || { echo "image: docker is not installed"; exit 1; }
	@mkdir -p $(IMAGE_DIR)/bin $(IMAGE_DIR)/rootfs/tmp $(IMAGE_DIR)/owned/data
	chmod 1777 $(IMAGE_DIR)/rootfs/tmp
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w $(LDFLAGS)" -o $(IMAGE_DIR)/bin/ \
		./ecs/cmd/ecs ./kvserver/cmd/kvserver ./kvclient/cmd/kvclient ./kvclient/cmd/kvbench
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o $(IMAGE_DIR)/bin/etcd go.etcd.io/etcd/server/v3
	DOCKER_BUILDKIT=0 docker build -q -f config/deploy/Dockerfile -t $(IMAGE) \
		--label org.opencontainers.image.version=$(shell git describe --tags --always --dirty 2>/dev/null) $(IMAGE_DIR)
	@docker run --rm $(IMAGE) ecs --version

## multihost: config/deploy/compose.yaml for real (e2e/multihost, tag multihost): a
## 3-member etcd, two ECSes and five kvservers, each container a host with its
## own address; loads keys, kills a server's container, cuts one off the network,
## pauses one, kills the leading ECS, heals each; ends with `ecs check` clean,
## every acknowledged write readable, and takes everything down (also on
## failure). Builds the image first; skips (exit 0) without Docker or Compose
multihost:
	@if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then \
		echo "multihost: skipped: Docker is not available (no docker command, or its daemon does not answer)"; exit 0; fi; \
	if command -v docker-compose >/dev/null 2>&1; then compose=docker-compose; \
	elif docker compose version >/dev/null 2>&1; then compose="docker compose"; \
	else echo "multihost: skipped: neither docker-compose nor docker compose is installed"; exit 0; fi; \
	$(MAKE) --no-print-directory image || exit 1; \
	ECSKV_IMAGE=$(IMAGE) $(GO) test -tags multihost -count=1 -timeout 15m -v ./e2e/multihost -bin-dir $(IMAGE_DIR)/bin; \
	status=$$?; \
	$$compose -f config/deploy/compose.yaml -p ecskv-multihost down -v --remove-orphans -t 2 >/dev/null 2>&1; \
	exit $$status

## run: start a local cluster of $(N) servers on the embedded etcd (Ctrl-C stops it);
## BASE_PORT, ETCD_PORT and HTTP move it off the default ports
run: build
	$(BIN)/ecs start -n $(N) --data-dir $(DATA) $(if $(BASE_PORT),--base-port $(BASE_PORT)) \
		$(if $(ETCD_PORT),--etcd-port $(ETCD_PORT)) $(if $(HTTP),--http $(HTTP))

## test: unit tests (race detector), SEEDS seeds of the simulator, and the
## end-to-end tests on real processes
test: unit sim e2e

## unit: unit tests with the race detector (everything but e2e)
unit:
	$(GO) test -race -count=1 $(PKGS)

## sim: SEEDS (200) seeded runs of the deterministic simulator (e2e/sim):
## servers' chain state machines, ECS decisions, an etcd model, faults of
## every kind, porcupine. SEED=0x... replays one run with its fault plan;
## SIM_BASE=N fixes the first seed (random otherwise, printed)
SEEDS ?= 200
sim:
	$(GO) test ./e2e/sim/ -count=1 -timeout 0 -run '^Test(Sim|Canaries)' $(if $(SEED),-sim.seed=$(SEED) -sim.v -v,-sim.seeds=$(SEEDS) $(if $(SIM_BASE),-sim.base=$(SIM_BASE)))

## e2e: end-to-end tests against real processes (bin/)
e2e: build tools
	ECSKV_E2E_REQUIRE_TOOLS=1 $(GO) test -tags e2e -count=1 -timeout 15m $(E2E_PKGS) -bin-dir $(BIN)

## screenshots: regenerate config/img (status page, dashboard) from the e2e tests
screenshots: build tools
	ECSKV_E2E_SCREENSHOTS=$(CURDIR)/config/img $(GO) test -tags e2e -count=1 \
		-run 'TestStatusPageDrawsRing|TestPrometheusSeesFailover' $(E2E_PKGS) -bin-dir $(BIN)

## chaos: ROUNDS (20) rounds of DURATION (60s) each, every round a fresh cluster under
## one nemesis (they take turns; ECSKV_CHAOS_NEMESES=a,b picks them); prints a table
## per nemesis. Then the whole-cluster power cut of `ecs start` (3 rounds). Porcupine's
## visualisation of any non-linearizable history goes to chaos-out/.
ROUNDS   ?= 20
chaos: build
	@mkdir -p $(CURDIR)/chaos-out; rm -f $(CURDIR)/chaos-out/report.txt
	ECSKV_CHAOS_ROUNDS=$(ROUNDS) ECSKV_CHAOS_DURATION=$(or $(DURATION),60s) ECSKV_CHAOS_OUT=$(CURDIR)/chaos-out \
		ECSKV_CHAOS_REPORT=$(CURDIR)/chaos-out/report.txt \
		$(GO) test -tags e2e -run '^(TestChaos|TestWholeClusterPowerCut)$$' -count=1 -timeout 0 -v $(E2E_PKGS) -bin-dir $(BIN) > $(CURDIR)/chaos-out/test.log 2>&1; \
		status=$$?; cat $(CURDIR)/chaos-out/report.txt 2>/dev/null || tail -50 $(CURDIR)/chaos-out/test.log; \
		echo "full log: chaos-out/test.log"; exit $$status

## bench-failover: kill -9 trials under load (write/read unavailability) and
## rebalancing of a loaded cluster, on real processes; TRIALS trials, KEYS keys
TRIALS ?= 20
KEYS   ?= 200000
bench-failover: build
	ECSKV_BENCH=1 TRIALS=$(TRIALS) ECSKV_E2E_KEYS=$(KEYS) \
		$(GO) test -tags e2e -run TestBenchFailover -count=1 -timeout 30m -p 1 $(E2E_PKGS) -bin-dir $(BIN) -v

## proto: regenerate common/kvpb from its .proto (installs protoc and plugins when missing)
proto: proto-tools
	PATH="$$PATH:$$($(GO) env GOPATH)/bin" protoc -I common \
		--go_out=common --go_opt=paths=source_relative \
		--go-grpc_out=common --go-grpc_opt=paths=source_relative \
		--go-vtproto_out=common --go-vtproto_opt=paths=source_relative,features=marshal+unmarshal+size \
		common/kvpb/ecskv.proto common/kvpb/replication.proto

proto-tools:
	@command -v protoc >/dev/null || (apt-get update -qq && apt-get install -y -qq protobuf-compiler)
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	$(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
	$(GO) install github.com/planetscale/vtprotobuf/cmd/protoc-gen-go-vtproto@v0.6.1-0.20240319094008-0393e58bdf10

## lint: gofmt, go vet (e2e included), the Kubernetes manifests' schemas and
## the systemd units
lint: fmt vet k8s-lint systemd-lint

## systemd-lint: systemd-analyze verify of config/deploy/systemd (only the missing
## binaries in /usr/local/bin are forgiven); skipped without systemd-analyze
systemd-lint:
	@if ! command -v systemd-analyze >/dev/null 2>&1; then echo "systemd-lint: skipped: no systemd-analyze"; exit 0; fi; \
	out=$$(systemd-analyze verify --man=no config/deploy/systemd/ecs.service config/deploy/systemd/kvserver@.service 2>&1 | \
		grep -v 'Command /usr/local/bin/[a-z]* is not executable'); \
	if [ -n "$$out" ]; then echo "$$out"; exit 1; fi; echo "systemd-analyze verify: config/deploy/systemd/*.service ok"

## k8s-lint: validate config/deploy/k8s/*.yaml with kubeconform (installed through the
## Go module proxy when missing) against the strict schemas vendored in
## config/deploy/k8s/schemas: offline, no schema is fetched
KUBECONFORM     := github.com/yannh/kubeconform/cmd/kubeconform@v0.8.0
KUBECONFORM_BIN  = $(or $(shell $(GO) env GOBIN),$(shell $(GO) env GOPATH)/bin)/kubeconform
k8s-lint:
	@test -x $(KUBECONFORM_BIN) || $(GO) install $(KUBECONFORM)
	$(KUBECONFORM_BIN) -strict -summary \
		-schema-location 'config/deploy/k8s/schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json' config/deploy/k8s/*.yaml

## k8s-schemas: regenerate config/deploy/k8s/schemas from the Kubernetes OpenAPI
## document in k8s.io/kube-openapi (the version kubeconform requires; test data
## of Kubernetes v1.27), downloaded through the Go module proxy
KUBE_OPENAPI := k8s.io/kube-openapi@v0.0.0-20260603220949-865597e52e25
k8s-schemas:
	dir=$$($(GO) mod download -json $(KUBE_OPENAPI) | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p'); \
	$(GO) run ./config/deploy/k8s/genschemas -swagger $$dir/pkg/schemaconv/testdata/swagger.json -out config/deploy/k8s/schemas

## fmt: fail when a Go file needs gofmt
fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## vet: go vet, e2e included
vet:
	$(GO) vet ./...
	$(GO) vet -tags e2e ./e2e/...
	$(GO) vet -tags multihost ./e2e/multihost

## bench: Go benchmarks of the hot paths (key encoding, ring lookup, storage
## apply, one batch through an in-process chain, the library on the Batch
## stream vs unary calls); BENCHTIME per benchmark (default 1s)
BENCHTIME ?= 1s
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) $(PKGS)

## peer-tools: install redis-server, redis-cli and etcd from Debian's packages
## when missing (for bench-peers; RUNLEVEL=1 keeps apt from starting them)
peer-tools:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v redis-cli >/dev/null || missing="$$missing redis-tools"; \
	command -v etcd >/dev/null || missing="$$missing etcd-server"; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		$$SUDO env RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

## bench-peers: ecskv (3 and 5 servers), a Redis Cluster (3 masters + 3
## replicas, AOF everysec) and a 3-member etcd on loopback, kvbench workloads
## W, A and C (50 clients) and W and A (256 clients) against each for
## DURATION (30s) after a warm-up; prints one table (ops/s, latency, CPU s
## per 1,000 ops of servers and client) and writes bench-results/peers.{json,svg}
bench-peers: build peer-tools
	$(GO) run ./e2e/peers --bin-dir $(BIN) --duration $(or $(DURATION),30s) --out $(CURDIR)/bench-results

## bench-redis: only the redis-benchmark part of bench-peers (-t set,get,
## -n 100000, -c 50) against ecskv's Redis protocol (3 servers) and a
## Redis Cluster, into bench-results/redis/peers.{json,svg}
bench-redis: build peer-tools
	$(GO) run ./e2e/peers --bin-dir $(BIN) --systems ecskv-3,redis-cluster --only-redis-benchmark --out $(CURDIR)/bench-results/redis

## profile: kvbench W and C against a local 3-server (SERVERS) cluster
## started with --pprof; CPU and allocation profiles of every kvserver and
## the client, `go tool pprof -top` summaries, into bench-results/profile,
## and each server's write path stage by stage (ecskv_write_stage_seconds)
profile: build
	$(GO) run ./e2e/peers --bin-dir $(BIN) --profile --profile-servers $(or $(SERVERS),3) --duration $(or $(DURATION),30s) --out $(CURDIR)/bench-results/profile

## fuzz: run every fuzz target for FUZZTIME each
fuzz:
	@for pkg in $(PKGS); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

## sim-canaries: for every simulation canary (build tag simcanary_<name>: the
## old logic of one bug put back), run its reproduction from
## e2e/sim/testdata/canaries.txt with the tag; fails unless the simulator
## catches each one (plain `go test ./e2e/sim` runs the same runs, which must pass)
CANARIES = $(shell awk '!/^\#/ && NF { print $$1 }' e2e/sim/testdata/canaries.txt | sort -u)
.PHONY: sim-canaries
sim-canaries:
	@missed=""; for c in $(CANARIES); do \
		echo "== simcanary_$$c"; \
		out=$$($(GO) test -tags simcanary_$$c -run "^TestCanaries$$/^$$c$$" -count=1 -v ./e2e/sim -sim.canary=$$c 2>&1); st=$$?; \
		printf '%s\n' "$$out" | grep -E 'caught|^(ok|FAIL|panic)'; \
		[ $$st -eq 0 ] || missed="$$missed $$c"; \
	done; \
	if [ -n "$$missed" ]; then echo "canaries NOT caught:$$missed"; exit 1; fi; \
	echo "every canary caught: $(CANARIES)"

## clean: remove bin/
clean:
	rm -rf $(BIN)
