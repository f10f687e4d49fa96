package framework

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var binDirFlag = flag.String("bin-dir", filepath.Join("..", "bin"),
	"directory holding the ecs, kvserver and kvclient binaries (relative paths are resolved against the test's working directory)")

// Binary names under the bin dir.
const (
	ECSBin      = "ecs"
	KVServerBin = "kvserver"
	KVClientBin = "kvclient"
)

// BinDir returns the absolute bin dir of the -bin-dir flag and fails the test
// when one of the three binaries is missing.
func BinDir(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs(*binDirFlag)
	if err != nil {
		t.Fatalf("framework: -bin-dir %q: %v", *binDirFlag, err)
	}
	for _, name := range []string{ECSBin, KVServerBin, KVClientBin} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("framework: %v (run `make build`, or pass -bin-dir)", err)
		}
		if fi.IsDir() || fi.Mode()&0o111 == 0 {
			t.Fatalf("framework: %s is not an executable file", filepath.Join(dir, name))
		}
	}
	return dir
}

// childEnv is the environment of every child process: ours without ECSKV_*
// variables, so a developer's shell configuration cannot leak into a test.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ECSKV_") {
			env = append(env, kv)
		}
	}
	return env
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// TempDir makes a fresh directory for the test. Unlike t.TempDir it survives a
// failed test: t.Cleanup removes it only when the test passed, and logs its
// path otherwise, so the data of a failed run can be inspected.
func TempDir(t testing.TB, name string) string {
	t.Helper()
	pattern := unsafeName.ReplaceAllString(t.Name()+"-"+name, "_") + "-"
	dir, err := os.MkdirTemp("", "ecskv-e2e-"+pattern)
	if err != nil {
		t.Fatalf("framework: temp dir: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("framework: test failed, keeping %s", dir)
			return
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Logf("framework: remove %s: %v", dir, err)
		}
	})
	return dir
}
