# Chronik's make targets. `make run` and `make test` are all a fresh machine needs.
GO        ?= go
DATA_DIR  ?= ./data
LISTEN    ?= 127.0.0.1:9092
TEST_TIMEOUT ?= 14m

.PHONY: run cluster build test test-deps vet lint fuzz bench bench-single bench-cluster idle-cluster sim sim-cluster sim-bugs sim-bench chaos ci-samples clean

## run: one broker on $(LISTEN) with its data in $(DATA_DIR)
run:
	$(GO) run ./cmd/chronik -listen $(LISTEN) -data-dir $(DATA_DIR)

## cluster: three nodes on 127.0.0.1 (Kafka 9092-9094, Raft 19092-19094), data in $(DATA_DIR)/node1..3; Ctrl-C stops them
cluster:
	GO=$(GO) DATA_DIR=$(DATA_DIR) ./scripts/cluster.sh

build:
	$(GO) build -o bin/ ./cmd/...

## test: the whole suite (vet, lint, unit, property, real clients, a short simulator sweep, a
## short chaos run on a 3-node cluster)
test: test-deps
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

## test-deps: Go modules and the Debian packages the tests use (kcat)
test-deps:
	$(GO) mod download
	./scripts/install-test-deps.sh

vet:
	$(GO) vet ./...

lint:
	$(GO) test -count=1 ./internal/lint/

## fuzz: each fuzz target for FUZZTIME (default 30s; a count such as 20000x also works)
FUZZTIME ?= 30s
fuzz:
	$(GO) test ./core/record -run xxx -fuzz FuzzValidate -fuzztime $(FUZZTIME)
	$(GO) test ./core/log -run xxx -fuzz FuzzRecover -fuzztime $(FUZZTIME)
	$(GO) test ./kafka -run xxx -fuzz FuzzDecode -fuzztime $(FUZZTIME)
	$(GO) test ./kafka -run xxx -fuzz FuzzNodeHandle -fuzztime $(FUZZTIME)

## bench: the seed report's pipeline on a local 3-node cluster (RF 3, min ISR 2, acks=all):
## 2 HTTP ingestors, a verifier and the staged load, then the same load direct; checks
## every record and CPU recovery; writes docs/benchmarks/pipeline-DATE.md and .png (about 4 minutes)
bench:
	$(GO) run ./cmd/chronik-pipeline-bench -out docs/benchmarks/pipeline-$$(date -u +%F).md

## bench-single: Chronik vs kfake, one node, 3 partitions, acks=all, fsync on
bench-single:
	$(GO) run ./cmd/chronik-bench

## bench-cluster: Chronik vs kfake, 3 nodes, RF 3, acks=all, plus latency at 1/2, 1/10 and 1/50 of the saturated rate (about 7 minutes)
bench-cluster:
	$(GO) run ./cmd/chronik-bench -brokers 3 -runs 3 -sizes 1024,256 -duration 5s -paced-fractions 0.5,0.1,0.02 -out docs/benchmarks/cluster-$$(date -u +%F).md

## idle-cluster: CPU and RSS per node of an idle 3-node cluster with 1,000 partitions RF 3 (about 1 minute)
idle-cluster:
	$(GO) run ./cmd/chronik-idle -nodes 3 -partitions 1000 -rf 3 -settle 10s -measure 30s -out docs/benchmarks/cluster-idle-$$(date -u +%F).md

## sim: a bounded sweep of simulator seeds
SEEDS ?= 1000
sim:
	$(GO) run ./cmd/chronik-sim -sweep $(SEEDS)

## sim-cluster: a bounded sweep of cluster seeds: NODES (default 3) in cluster mode, SEEDS
## (default 200 here; SEEDS=1000 for the long sweep) from START, over worker processes
sim-cluster: SEEDS = 200
sim-cluster: NODES ?= 3
sim-cluster: START ?= 1
sim-cluster:
	$(GO) run ./cmd/chronik-sim -nodes $(NODES) -sweep $(SEEDS) -start $(START)

## sim-bugs: the simulator's power: each planted bug (the replication ones on 3 nodes)
## must be found within 200 seeds
sim-bugs:
	$(GO) test -tags chronikbugs -count=1 -v -run 'TestPlantedBugs$$' ./sim

## sim-bench: simulated seconds per wall second, one node, default workload and faults
sim-bench:
	$(GO) test -run XXX -bench BenchmarkSim -benchtime 40x ./sim

## chaos: a 3-node cluster of real chronik processes, every client and node-to-node link behind a
## fault-injecting proxy, through a seeded fault schedule of CHAOS_DURATION (under 10 min in all);
## SEED=42 (or CHAOS_SEED=42) replays seed 42, CHAOS_NODES=1 runs a single node
CHAOS_SEED     ?= $(if $(SEED),$(SEED),$(shell date +%s))
CHAOS_DURATION ?= 8m
CHAOS_NODES    ?= 3
chaos:
	$(GO) test ./chaos -run 'TestChaos$$' -count=1 -v -timeout 15m -chaos.duration=$(CHAOS_DURATION) -chaos.seed=$(CHAOS_SEED) -chaos.nodes=$(CHAOS_NODES)

## ci-samples: a short sample of every long run, for CI (a few minutes in all)
ci-samples:
	$(MAKE) sim-bugs
	$(GO) run ./cmd/chronik-sim -sweep 200 -start 100000
	$(GO) run ./cmd/chronik-sim -nodes 3 -sweep 50 -start 100000
	$(MAKE) fuzz FUZZTIME=20000x
	$(GO) run ./cmd/chronik-bench -runs 1 -duration 2s -records 200000 -disk-probe=false
	$(GO) run ./cmd/chronik-pipeline-bench -quick
	$(GO) run ./cmd/chronik-bench -brokers 3 -runs 1 -sizes 1024 -duration 2s -records 100000 -disk-probe=false
	$(GO) run ./cmd/chronik-idle -partitions 100 -settle 3s -measure 5s

clean:
	rm -rf bin $(DATA_DIR)
