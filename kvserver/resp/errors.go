package resp

import "errors"

// The conditions a Backend reports, matched with errors.Is.
var (
	// ErrNotFound is a missing or expired key.
	ErrNotFound = errors.New("resp: key not found")
	// ErrConditionFailed is a put or delete whose condition (NX, XX) did
	// not hold.
	ErrConditionFailed = errors.New("resp: condition failed")
	// ErrNotInteger is an INCR of a value that is not a base-10 int64.
	ErrNotInteger = errors.New("resp: value is not an integer")
	// ErrOverflow is an INCR past the int64 range.
	ErrOverflow = errors.New("resp: increment or decrement would overflow")
	// ErrBadCredentials is a wrong user name or password.
	ErrBadCredentials = errors.New("resp: wrong user name or password")
	// ErrLoginThrottled is an AUTH during the back-off after failed ones.
	ErrLoginThrottled = errors.New("resp: too many failed logins")
	// ErrAuthDisabled is an AUTH on a cluster without users.
	ErrAuthDisabled = errors.New("resp: the cluster has no authentication")
)

// ProtocolError is a request that breaks RESP. Its text is Redis's, and
// the server answers it and closes the connection, as Redis does.
type ProtocolError struct{ Msg string }

func (e *ProtocolError) Error() string { return "ERR Protocol error: " + e.Msg }

func protoErr(msg string) error { return &ProtocolError{Msg: msg} }
