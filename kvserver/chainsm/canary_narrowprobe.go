//go:build simcanary_narrowprobe

package chainsm

// canaryNarrowProbe puts back the first rule for probes after a chain
// change: only when a member after us in the new chain came before us in
// the chain we followed. A member that skipped a reorder (it adopted a
// later version directly) or whose successor pulled entries while it was
// above us is missed (first found by sim seed 0x60000d8 at cd33ff8: two
// writes at one seq; scripted as scenario member-skips-reorder).
const canaryNarrowProbe = true
