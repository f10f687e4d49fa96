//go:build simcanary_retrywindow

package sim

// canaryRetryWindow: clients retry a write until the operation's deadline,
// however long after the servers forgot its request id.
const canaryRetryWindow = true
