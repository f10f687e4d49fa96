package framework

import (
	"fmt"
	"testing"
	"time"
)

// chromiumArgs run Debian's chromium headless as root in a container.
var chromiumArgs = []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
	"--hide-scrollbars", "--no-first-run", "--user-data-dir="}

// RenderDOM loads url in headless Chromium, lets its scripts run for budget
// of virtual time, and returns the DOM as HTML.
func RenderDOM(t testing.TB, url string, budget time.Duration) string {
	t.Helper()
	args := append(chromiumCmd(t), fmt.Sprintf("--virtual-time-budget=%d", budget.Milliseconds()), "--dump-dom", url)
	res := Run(t, RunOptions{Timeout: 60 * time.Second, Quiet: true}, args[0], args[1:]...)
	if res.ExitCode != 0 {
		t.Fatalf("framework: chromium --dump-dom %s: exit %d: %s", url, res.ExitCode, Shorten(res.Stderr, 500))
	}
	return res.Stdout
}

// Screenshot saves a PNG of url rendered at width x height.
func Screenshot(t testing.TB, url, path string, width, height int, budget time.Duration) {
	t.Helper()
	args := append(chromiumCmd(t), fmt.Sprintf("--virtual-time-budget=%d", budget.Milliseconds()),
		fmt.Sprintf("--window-size=%d,%d", width, height), "--screenshot="+path, url)
	res := Run(t, RunOptions{Timeout: 60 * time.Second, Quiet: true}, args[0], args[1:]...)
	if res.ExitCode != 0 {
		t.Fatalf("framework: chromium --screenshot %s: exit %d: %s", url, res.ExitCode, Shorten(res.Stderr, 500))
	}
}

func chromiumCmd(t testing.TB) []string {
	bin := Tool(t, "chromium")
	dir := TempDir(t, "chromium")
	args := append([]string{bin}, chromiumArgs...)
	args[len(args)-1] += dir
	return args
}
