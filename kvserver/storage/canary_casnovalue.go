//go:build simcanary_casnovalue

package storage

// CanaryCASNoValue puts back the first conditional writes' bug: a head
// resolving an increment or a condition read the key's value from the
// cache only, and found none in pebble (an empty value), so after a
// failover increments failed as "not an integer".
const CanaryCASNoValue = true
