//go:build simcanary_readinflight

package chainsm

// canaryReadInFlight lets the tail read a key with a write in flight from
// storage, which holds that write applied but not committed (nor synced
// on every member), instead of answering with the key's last committed
// record or waiting for the commit.
const canaryReadInFlight = true
