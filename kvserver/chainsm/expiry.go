package chainsm

// ExpiryVerdict decides how a record whose absolute expiry is expiryMs
// (unix ms; 0 = never) reads on a server whose wall clock says nowWallMs,
// when every server's wall clock is within skewMs of true time, so that
// reads stay monotonic under clock skew (DESIGN §6: a key one read reported
// missing is never returned by a later read).
//
//   - live (now < expiry): serve the value;
//   - expired (now >= expiry + 2*skew): report the key missing; every
//     server's clock has passed expiry, so no later read anywhere says live;
//   - neither: another server may still see the record live; the read must
//     wait or be retried.
func ExpiryVerdict(nowWallMs, expiryMs, skewMs int64) (live, expired bool) {
	if expiryMs == 0 {
		return true, false
	}
	if canaryTTLSkew { // simcanary_ttlskew: each replica by its own clock, skew ignored
		skewMs = 0
	}
	return nowWallMs < expiryMs, nowWallMs >= expiryMs+2*skewMs
}
