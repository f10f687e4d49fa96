//go:build simcanary_noreorderprobe

package chainsm

// canaryNoReorderProbe leaves out the probe after a reorder: a member that
// a reorder moved above members that came before it (a new head, say)
// sequences from its own applied seq, although they may hold entries in
// flight that it never got.
const canaryNoReorderProbe = true
