//go:build !simcanary_retrywindow

package sim

const canaryRetryWindow = false
