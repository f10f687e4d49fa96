// Package auth is ecskv's authentication (DESIGN §8): user records with
// bcrypt password hashes, the cluster's token key, HMAC-signed login tokens
// every server verifies on its own, and the Authenticator a kvserver keeps
// in step with etcd (users/ and the auth key) to log users in and check
// their tokens.
//
// A token names the user and the etcd revision of the user's record, and
// expires. Removing a user, or changing their password, changes or deletes
// that record, so every server that has seen the change refuses the user's
// older tokens at once; a server cut off from etcd refuses them when they
// expire. The Authenticator is safe for concurrent use.
//
// A user's keys live in the namespace of their record's id, given at
// creation and never reused (records older than ids use the name). So a
// name removed and added again is a new user with an empty namespace, and
// an old token, naming a deleted record's revision, resolves to nothing.
package auth
