package auth

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// FuzzParseToken: any string is rejected cleanly or is a token whose claims
// sign back to the same string.
func FuzzParseToken(f *testing.F) {
	key := make([]byte, KeyBytes)
	good := Sign(key, Claims{User: "alice", Rev: 7, Expires: time.UnixMilli(1_700_000_000_000)})
	for _, s := range []string{"", "v1.", "v1..", "v1.x.", "v1..sig", ".", "v1.AAAA.AAAA", good, good + "x", good[:len(good)-1]} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := Parse(key, tok)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalidToken)
			return
		}
		require.NoError(t, CheckUser(c.User))
		require.Equal(t, tok, Sign(key, c), "a token that verifies must be the one signed")
	})
}

// FuzzLogin: any user name, password and token is answered with one of the
// package's errors, never a panic, and only the right password logs in.
func FuzzLogin(f *testing.F) {
	a, _ := newTestAuth(f)
	for _, s := range [][2]string{{"alice", "alice-pw"}, {"alice", "wrong"}, {"", ""}, {"bob", "bob-pw\x00"}, {"a\x00", "x"}, {"ALICE", "alice-pw"}} {
		f.Add(s[0], s[1])
	}
	known := []error{ErrBadUser, ErrBadPassword, ErrBadCredentials, ErrTooManyAttempts, ErrBusy}
	f.Fuzz(func(t *testing.T, user, pw string) {
		tok, _, err := a.Login(user, pw, "10.0.0.1")
		if err != nil {
			require.True(t, anyIs(err, known...), "unexpected error %v", err)
			return
		}
		require.Equal(t, user+"-pw", pw)
		got, err := a.Verify(tok)
		require.NoError(t, err)
		require.Equal(t, user, got.User)
		_, err = a.Verify(pw)
		require.Error(t, err)
	})
}

func anyIs(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}
