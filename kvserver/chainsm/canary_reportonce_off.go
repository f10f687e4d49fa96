//go:build !simcanary_reportonce

package chainsm

const canaryReportOnce = false
