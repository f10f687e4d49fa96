//go:build simcanary_leaseorder

package chainsm

// simcanary_leaseorder puts back the old lease grant (issue 12, bug 6): the
// grant paired a fresh etcd contact with an epoch read before it, so a
// grantor that had moved on kept granting at the old epoch.

// canaryGrantEpoch is the epoch a lease grant is checked against: the one
// the requester names when it is older than the grantor's, as if the epoch
// had been read before the (fresh) etcd contact.
func canaryGrantEpoch(cur, asked uint64) uint64 { return min(cur, asked) }
