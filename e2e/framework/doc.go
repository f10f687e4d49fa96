// Package framework runs ecskv clusters as real processes for the end-to-end
// tests (modelled on etcd tests/framework/e2e and PD tests/cluster.go).
//
// NewCluster starts `bin/ecs start -n N ...` with its embedded etcd on free
// ports, in its own process group, streams its output to t.Log with a prefix
// and waits for its "cluster ready" line. A Cluster can be stopped (SIGTERM),
// killed (SIGKILL of everything) and started again on the same data dir and
// ports; StartKVServer adds a hand-started kvserver. Process wraps one child
// process: Stop, Kill, Pause, Resume, Wait.
//
// NewChaosCluster builds a cluster for fault injection (chaos.go): an etcd
// process of the harness (the test binary re-executed, RunEtcdIfAsked), ECS
// controllers with `ecs start -n 0` (one leads, the others stand by) and
// hand-started kvservers, every link through a proxy of a Network
// (proxy.go) that can blackhole, delay or drop the traffic from any node to
// any other. history.go records operations and checks them with porcupine
// (a key-value model partitioned per key); workload.go drives the library
// clients; nemesis.go lists the faults.
//
// Everything a test starts is stopped by t.Cleanup. The data dir is removed
// when the test passed and kept (its path is logged) when it failed.
//
// The binaries are found through the -bin-dir test flag, by default ../bin
// relative to the test's working directory (the e2e directory, so the
// module's bin/).
//
// Concurrency: a Cluster's methods may be called from several goroutines; a
// Process's methods too. Methods taking a testing.TB that may fail the test
// (t.Fatal) must be called from the test's goroutine.
//
// The package is Linux-oriented: it uses process groups, SIGSTOP/SIGCONT and
// /proc to find a process's children.
package framework
