package auth

import (
	"errors"

	"github.com/ecskv/ecskv/common/kverr"
)

// The errors a server sends to clients are the rows of kverr's table, so
// the client library matches them with errors.Is.
var (
	// ErrBadCredentials is a wrong user name or password; which of the two
	// is not said.
	ErrBadCredentials = kverr.ErrBadCredentials
	// ErrTooManyAttempts refuses a login during the back-off that follows
	// failed ones.
	ErrTooManyAttempts = kverr.ErrTooManyAttempts
	// ErrBusy refuses a login while the server checks as many passwords as
	// it allows at once: retry shortly, or at another server.
	ErrBusy = kverr.ErrLoginBusy
	// ErrInvalidToken is a missing, malformed, forged or revoked token.
	ErrInvalidToken = kverr.ErrInvalidToken
	// ErrTokenExpired is a token past its expiry: log in again.
	ErrTokenExpired = kverr.ErrTokenExpired
	// ErrUserUnknownYet is a valid token for a user record newer than this
	// server has seen: retry in a moment.
	ErrUserUnknownYet = kverr.ErrUserUnknownYet
	// ErrNotReady means the server has not loaded the users and key yet.
	ErrNotReady = kverr.ErrUsersNotLoaded
	// ErrBadUser rejects a user name that is not 1-63 letters, digits, '.', '_' or '-'.
	ErrBadUser = kverr.ErrBadUser
	// ErrBadPassword rejects an empty password or one over MaxPasswordBytes.
	ErrBadPassword = kverr.ErrBadPassword
	// ErrBadID rejects a user id that is not 16 lower-case hex characters.
	ErrBadID = errors.New("auth: user id must be 16 lower-case hex characters")
)
