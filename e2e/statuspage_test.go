//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/e2e/framework"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// screenshotsEnv names a directory where the status page test saves its
// screenshots (README's pictures come from there).
const screenshotsEnv = "ECSKV_E2E_SCREENSHOTS"

var arcRe = regexp.MustCompile(`<path class="part"[^>]*data-head="([^"]*)" data-from="(\d+)" data-to="(\d+)"`)

// TestStatusPageDrawsRing renders the ECS status page in headless Chromium,
// as a browser would (scripts run), and checks the ring is drawn: arcs that
// cover every partition exactly once, coloured by head, every server
// listed, and the page refreshing itself. After a server is killed, the
// page marks the under-replicated partitions and shows the failover.
func TestStatusPageDrawsRing(t *testing.T) {
	const partitions = 64
	c := framework.NewCluster(t, framework.WithServers(3), framework.WithReplicas(3), framework.WithPartitions(partitions))
	url := "http://" + framework.Addr(c.Ports().HTTP) + "/"

	dom := framework.RenderDOM(t, url, 5*time.Second)
	require.Contains(t, dom, `<svg id="ring"`, "the ring is drawn")
	assert.Contains(t, dom, `data-partitions="64"`)
	covered := make([]int, partitions)
	heads := map[string]bool{}
	for _, m := range arcRe.FindAllStringSubmatch(dom, -1) {
		from, _ := strconv.Atoi(m[2])
		to, _ := strconv.Atoi(m[3])
		heads[m[1]] = true
		for p := from; p <= to && p < partitions; p++ {
			covered[p]++
		}
	}
	for p, n := range covered {
		assert.Equal(t, 1, n, "partition %d drawn once", p)
	}
	for _, id := range c.ServerIDs() {
		assert.Contains(t, dom, `data-server="`+id+`"`, "server %s listed", id)
		assert.True(t, heads[id], "%s heads some arcs", id)
	}
	assert.NotContains(t, dom, `class="under"`, "nothing under-replicated yet")
	refreshes := regexp.MustCompile(`data-refreshes="(\d+)"`).FindStringSubmatch(dom)
	require.NotNil(t, refreshes, "live part present")
	n, _ := strconv.Atoi(refreshes[1])
	assert.GreaterOrEqual(t, n, 1, "the page fetched its live part again by itself")

	victim := c.ServerIDs()[2]
	c.KillServer(t, victim)
	testutil.Eventually(t, 30*time.Second, 100*time.Millisecond, func() bool {
		st, err := c.StatusE(t)
		return err == nil && st.UnderReplicated == partitions
	}, "%s failed over", victim)

	dom = framework.RenderDOM(t, url, 3*time.Second)
	assert.Equal(t, partitions, countUnder(dom), "every partition marked under-replicated")
	assert.Regexp(t, `data-server="`+victim+`".*?<td class="down">down</td>`, strings.ReplaceAll(dom, "\n", " "))
	assert.Contains(t, dom, "<td>failover</td>", "the failover is in the recent events")
	for _, m := range arcRe.FindAllStringSubmatch(dom, -1) {
		assert.NotEqual(t, victim, m[1], "a dead server heads no partition")
	}

	if dir := os.Getenv(screenshotsEnv); dir != "" {
		require.NoError(t, os.MkdirAll(dir, 0o755))
		path := filepath.Join(dir, "status-page.png")
		framework.Screenshot(t, url, path, 1280, 760, 2*time.Second)
		t.Logf("screenshot: %s", path)
	}
}

func countUnder(dom string) int {
	n := 0
	for _, m := range regexp.MustCompile(`<path class="under" d="[^"]*" data-from="(\d+)" data-to="(\d+)"`).FindAllStringSubmatch(dom, -1) {
		from, _ := strconv.Atoi(m[1])
		to, _ := strconv.Atoi(m[2])
		n += to - from + 1
	}
	return n
}
