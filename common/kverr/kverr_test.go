package kverr

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestTableRoundTrip sends every row the way a server does (a domain error
// wrapping the sentinel, through ToStatus) and receives it the way the
// client does, from the unary status and from a Batch result's code and
// message: the client's error matches the sentinel and the code's class
// and keeps the server's message.
func TestTableRoundTrip(t *testing.T) {
	for _, r := range table {
		t.Run(r.err.Error(), func(t *testing.T) {
			sent := ToStatus(fmt.Errorf("%w: some detail", r.err))
			require.Equal(t, r.code, status.Code(sent))
			msg := r.err.Error() + ": some detail"
			require.Equal(t, msg, status.Convert(sent).Message())

			unary := FromStatus(sent)
			batch := FromStatus(status.Error(codes.Code(uint32(status.Code(sent))), status.Convert(sent).Message()))
			for _, got := range []error{unary, batch} {
				var e *Error
				require.ErrorAs(t, got, &e)
				require.ErrorIs(t, got, r.err)
				require.Equal(t, msg, got.Error())
				require.Equal(t, r.code, e.Code())
				require.Equal(t, r.code, status.Code(got), "the code is still readable as a status")
				if class, ok := classes[r.code]; ok {
					require.ErrorIs(t, got, class)
				}
				for _, other := range table {
					if other.err != r.err {
						require.NotErrorIs(t, got, other.err)
					}
				}
			}
			if r.status != kvpb.Status_STATUS_UNSPECIFIED {
				got := FromResponse(r.status, "some detail")
				require.ErrorIs(t, got, r.err)
				require.Equal(t, msg, got.Error())
			}
		})
	}
}

// TestMessagesPrefixFree keeps the match by message unambiguous: no row's
// message begins with another's of the same code.
func TestMessagesPrefixFree(t *testing.T) {
	for _, a := range table {
		for _, b := range table {
			if a.err != b.err && a.code == b.code {
				require.False(t, strings.HasPrefix(a.err.Error(), b.err.Error()), "%q begins with %q", a.err, b.err)
			}
		}
	}
}

func TestToStatus(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		code    codes.Code
		message string
	}{
		{"nil", nil, codes.OK, ""},
		{"detail before the sentinel gets the row's message first",
			fmt.Errorf("storage: store closed: %w", ErrServerStopped), codes.Unavailable, "kvserver: server stopped: storage: store closed: kvserver: server stopped"},
		{"deadline", fmt.Errorf("kvserver: write not yet committed: %w", context.DeadlineExceeded), codes.DeadlineExceeded, "kvserver: write not yet committed: context deadline exceeded"},
		{"canceled", context.Canceled, codes.Canceled, "context canceled"},
		{"anything else", errors.New("boom"), codes.Internal, "boom"},
		{"a status passes unchanged", status.Error(codes.Aborted, "x"), codes.Aborted, "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ToStatus(tt.err)
			require.Equal(t, tt.code, status.Code(got))
			if tt.err != nil {
				require.Equal(t, tt.message, status.Convert(got).Message())
			}
		})
	}
}

func TestFromStatusLeavesUnknown(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"nil", nil},
		{"not a status", errors.New("kvserver: key too large")},
		{"unknown message", status.Error(codes.FailedPrecondition, "grpc: something else")},
		{"known message, other code", status.Error(codes.Internal, ErrKeyTooLarge.Error())},
		{"wrapped status", fmt.Errorf("dial: %w", status.Error(codes.InvalidArgument, ErrKeyTooLarge.Error()))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.err, FromStatus(tt.err))
		})
	}
}

func TestFromStatusUnknownMessageMatchesClass(t *testing.T) {
	sent := status.Error(codes.ResourceExhausted, "grpc: received message larger than max (5 vs. 4)")
	got := FromStatus(sent)
	require.ErrorIs(t, got, ErrResourceExhausted)
	require.Equal(t, "grpc: received message larger than max (5 vs. 4)", got.Error())
	require.Equal(t, codes.ResourceExhausted, status.Code(got))
	for _, r := range table {
		require.NotErrorIs(t, got, r.err)
	}
}

func TestFromResponseNoRefusal(t *testing.T) {
	for _, st := range []kvpb.Status{kvpb.Status_STATUS_UNSPECIFIED, kvpb.Status_SUCCESS, kvpb.Status_UPDATE, kvpb.Status_NOT_FOUND, kvpb.Status_READ_FROM_TAIL} {
		require.NoError(t, FromResponse(st, "x"), st.String())
	}
	require.Equal(t, ErrServerStopped.Error(), FromResponse(kvpb.Status_SERVER_STOPPED, "").Error())
}

func TestErrorf(t *testing.T) {
	err := Errorf(ErrKeyTooLarge, "%d bytes, limit %d", 70, 64)
	require.ErrorIs(t, err, ErrKeyTooLarge)
	require.ErrorIs(t, err, ErrInvalidArgument)
	require.Equal(t, "kvserver: key too large: 70 bytes, limit 64", err.Error())
	require.Equal(t, codes.InvalidArgument, status.Code(ToStatus(err)), "a local refusal sends as the server's would")

	err = New(ErrEmptyKey)
	require.ErrorIs(t, err, ErrInvalidArgument)
	require.Equal(t, ErrEmptyKey.Error(), err.Error())

	other := errors.New("x: not in the table")
	err = Errorf(other, "detail")
	require.ErrorIs(t, err, other)
	require.Equal(t, "x: not in the table: detail", err.Error())
}
