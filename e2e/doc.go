// Package e2e holds the black-box end-to-end tests of ecskv: they run the
// binaries of `make build` (bin/ecs, bin/kvserver, bin/kvclient) as real
// processes on free local ports and talk to them through the kvclient library
// and the command-line tools, the way a user would.
//
// The tests carry the `e2e` build tag so that `go test ./...` skips them:
//
//	make build
//	go test -tags e2e -count=1 -timeout 6m ./e2e/...
//	go test -tags e2e ./e2e/... -args -bin-dir=/path/to/bin
//
// Replication under faults (failover_test.go, rebalance_test.go): kill -9
// under write load, two kills in one chain, restart with the same command
// line, `ecs add` and `ecs remove` under load. Every test records each
// acknowledged write and reads it back, waits until every chain has R
// members again and runs `ecs check`. A lost write is explained with its
// partition's chain history, recorded from an etcd watch of the ring.
// Timings are printed, not asserted (the bounds are hang guards); the
// measurements live in TestBenchFailover (make bench-failover).
//
// Linearizability under faults (chaos_test.go): TestChaos runs rounds of a
// put/get/delete workload on contended keys under one nemesis each (kills,
// pauses, partitions through proxies, ECS failover, etcd restarts, a power
// cut of every server and ECS, servers cut from the control plane), then
// checks recovery, `ecs check`, acknowledged writes and the history with
// porcupine. Without ECSKV_CHAOS_ROUNDS it runs one short round of six
// nemeses (kill-head, partition-server, kill-ecs-leader, restart-etcd,
// kill-all, isolate-control-plane); `make chaos` runs the long version.
// TestWholeClusterPowerCut (restart_test.go) cuts the power of an
// `ecs start` cluster under kvbench load, each cut followed by 64 fresh
// writes and `ecs check`, both bounded to 10 s: two cuts in the default
// run, five in `make chaos`.
//
// Environment (read by the test process; children never see ECSKV_*):
//
//	ECSKV_CHAOS_ROUNDS=N      chaos rounds, the nemeses taking turns (default: the short set);
//	                          set, it also runs TestWholeClusterPowerCut
//	ECSKV_CHAOS_DURATION=D    length of one chaos round (default 15s)
//	ECSKV_CHAOS_NEMESES=a,b   nemeses to take turns (default every one); without
//	                          kill-all among them, no TestWholeClusterPowerCut
//	ECSKV_CHAOS_OUT=DIR       where porcupine's visualisations go (default a kept temp dir)
//	ECSKV_CHAOS_REPORT=FILE   also append the per-nemesis table and the power cut's summary there
//
//	ECSKV_E2E_KEYS=N          keys of 1 KiB in TestAddRemoveUnderLoad (default 20000)
//	                          and TestBenchFailover (default 200000)
//	ECSKV_E2E_LOG_LEVEL=lvl   --log-level of every cluster (debug, info, ...)
//	ECSKV_BENCH=1 TRIALS=n    run TestBenchFailover with n kill -9 trials (default 20)
//	ECSKV_BENCH_PARTITIONS=P  P of the benchmark cluster (default 256)
//
// The process harness lives in e2e/framework.
package e2e
