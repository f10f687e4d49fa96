package kverr

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ecskv/ecskv/common/kvpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Error is a refusal as a client holds it: the message the server sent (or
// the client's own, for a request it refused before sending), the gRPC
// code, and the row's sentinel and the code's class for errors.Is.
type Error struct {
	code codes.Code
	msg  string
	is   []error
}

func newError(r *row, msg string) *Error {
	e := &Error{code: r.code, msg: msg, is: []error{r.err}}
	if c, ok := classes[r.code]; ok {
		e.is = append(e.is, c)
	}
	return e
}

// Error returns the server's message.
func (e *Error) Error() string { return e.msg }

// Unwrap returns the row's sentinel and, when the code has one, its class.
func (e *Error) Unwrap() []error { return e.is }

// Code returns the gRPC code the refusal travels with.
func (e *Error) Code() codes.Code { return e.code }

// GRPCStatus lets status.Code and status.FromError read the refusal as the
// status it came as.
func (e *Error) GRPCStatus() *status.Status { return status.New(e.code, e.msg) }

// Errorf makes the refusal of sentinel locally, as a server would send it:
// the client refuses what it can check before sending (the cluster's key
// and value limits) with the same error the server would return.
func Errorf(sentinel error, format string, args ...any) error {
	detail := fmt.Sprintf(format, args...)
	r := rowOf(sentinel)
	if r == nil {
		return fmt.Errorf("%w: %s", sentinel, detail)
	}
	return newError(r, sentinel.Error()+": "+detail)
}

// New is Errorf without detail: the sentinel's refusal as it stands.
func New(sentinel error) error {
	if r := rowOf(sentinel); r != nil {
		return newError(r, sentinel.Error())
	}
	return sentinel
}

// ToStatus turns a server's error into the gRPC status error that carries
// it: a row's code with a message that begins with the row's (prefixed when
// the error's own does not), DeadlineExceeded or Canceled for a context's
// end, and Internal for the rest. A gRPC status error passes unchanged.
func ToStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(interface{ GRPCStatus() *status.Status }); ok { //nolint:errorlint // only an unwrapped status passes as it is
		return err
	}
	msg := err.Error()
	if r := rowOf(err); r != nil {
		if !strings.HasPrefix(msg, r.err.Error()) {
			msg = r.err.Error() + ": " + msg
		}
		return status.Error(r.code, msg)
	}
	code := codes.Internal
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	}
	return status.Error(code, msg)
}

// FromStatus turns a gRPC status error received from a server into an
// *Error when a row has its code and its message begins with the row's. A
// status in no row whose code has a class (another server's, or gRPC's own
// refusal of an oversized message) becomes an *Error that matches only the
// class; anything else is returned as it is.
func FromStatus(err error) error {
	s, ok := err.(interface{ GRPCStatus() *status.Status }) //nolint:errorlint // a wrapped status carries the wrapper's message
	if !ok {
		return err
	}
	if _, typed := err.(*Error); typed { //nolint:errorlint // as above
		return err
	}
	st := s.GRPCStatus()
	var best *row
	for i := range table {
		r := &table[i]
		if r.code == st.Code() && strings.HasPrefix(st.Message(), r.err.Error()) &&
			(best == nil || len(r.err.Error()) > len(best.err.Error())) {
			best = r
		}
	}
	if best != nil {
		return newError(best, st.Message())
	}
	if c, ok := classes[st.Code()]; ok {
		return &Error{code: st.Code(), msg: st.Message(), is: []error{c}}
	}
	return err
}

// FromResponse is the refusal a Response answers with (SERVER_NOT_RESPONSIBLE
// and the others of the table), its message being the Response's; nil for
// a status that is no refusal (SUCCESS, UPDATE, NOT_FOUND, READ_FROM_TAIL).
func FromResponse(st kvpb.Status, msg string) error {
	for i := range table {
		if r := &table[i]; r.status == st && st != kvpb.Status_STATUS_UNSPECIFIED {
			if msg == "" {
				return newError(r, r.err.Error())
			}
			return newError(r, r.err.Error()+": "+msg)
		}
	}
	return nil
}

// rowOf returns the row whose sentinel err wraps, or nil.
func rowOf(err error) *row {
	for i := range table {
		if errors.Is(err, table[i].err) {
			return &table[i]
		}
	}
	return nil
}
