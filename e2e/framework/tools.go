package framework

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// RequireToolsEnv, when set (make test sets it), turns a missing external
// tool into a failure instead of a skip, so CI cannot pass by skipping.
const RequireToolsEnv = "ECSKV_E2E_REQUIRE_TOOLS"

// Tool returns the path of an external program a test drives (prometheus,
// promtool, chromium). `make tools` installs them from Debian's packages.
func Tool(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv(RequireToolsEnv) != "" {
		t.Fatalf("framework: %s not found (run `make tools`): %v", name, err)
	}
	t.Skipf("framework: %s not found; run `make tools` to install it", name)
	return ""
}

// RepoFile returns the absolute path of a file of the repository (such as
// config/), found from the test's working directory upwards.
func RepoFile(t testing.TB, rel string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("framework: getwd: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, rel)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("framework: no go.mod above the working directory")
		}
		dir = parent
	}
}
