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
// The process harness lives in e2e/framework.
package e2e
