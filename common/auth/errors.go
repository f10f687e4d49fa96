package auth

import "errors"

var (
	// ErrBadCredentials is a wrong user name or password; which of the two
	// is not said.
	ErrBadCredentials = errors.New("auth: wrong user name or password")
	// ErrTooManyAttempts refuses a login during the back-off that follows
	// failed ones.
	ErrTooManyAttempts = errors.New("auth: too many failed logins")
	// ErrBusy refuses a login while the server checks as many passwords as
	// it allows at once: retry shortly, or at another server.
	ErrBusy = errors.New("auth: the server is busy with logins; retry shortly")
	// ErrInvalidToken is a missing, malformed, forged or revoked token.
	ErrInvalidToken = errors.New("auth: invalid token")
	// ErrTokenExpired is a token past its expiry: log in again.
	ErrTokenExpired = errors.New("auth: token expired")
	// ErrUserUnknownYet is a valid token for a user record newer than this
	// server has seen: retry in a moment.
	ErrUserUnknownYet = errors.New("auth: user not yet known to this server")
	// ErrNotReady means the server has not loaded the users and key yet.
	ErrNotReady = errors.New("auth: users not loaded yet")
	// ErrBadUser rejects a user name that is not 1-63 letters, digits, '.', '_' or '-'.
	ErrBadUser = errors.New("auth: user name must be 1-63 letters, digits, '.', '_' or '-' (starting with a letter or digit)")
	// ErrBadID rejects a user id that is not 16 lower-case hex characters.
	ErrBadID = errors.New("auth: user id must be 16 lower-case hex characters")
	// ErrBadPassword rejects an empty password or one over MaxPasswordBytes.
	ErrBadPassword = errors.New("auth: password must be 1-72 bytes")
)
