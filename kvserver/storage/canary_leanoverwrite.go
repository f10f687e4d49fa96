//go:build simcanary_leanoverwrite

package storage

// CanaryLeanOverwrite leaves a lean log record lean when its key is
// written again: the value is gone from the data record, and a restart
// finds the record without it.
const CanaryLeanOverwrite = true
