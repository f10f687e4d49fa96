//go:build !simcanary_ackbeforesync

package chainsm

const canaryAckBeforeSync = false
