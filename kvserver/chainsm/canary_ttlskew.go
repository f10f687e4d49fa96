//go:build simcanary_ttlskew

package chainsm

// simcanary_ttlskew puts back expiry decided by each replica's own clock
// (issue 12, bug 8): expired as soon as the local clock passes the expiry,
// whatever the skew between servers.
const canaryTTLSkew = true
