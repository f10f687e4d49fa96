//go:build simcanary_dupholdback

package chainsm

// canaryDupHoldback puts back the old duplicate path (issue 12, bug 4): a
// retried write whose first attempt is committed is answered at once,
// holdback or not, so a removed member may still serve the old value after
// the retry was acknowledged.
const canaryDupHoldback = true
