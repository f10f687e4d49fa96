//go:build e2e

package e2e

import (
	"testing"

	"github.com/ecskv/ecskv/e2e/framework"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	framework.RunEtcdIfAsked()
	goleak.VerifyTestMain(m)
}
