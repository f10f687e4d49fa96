package resp

import (
	"strconv"
	"strings"
)

// Protocol versions a connection speaks (HELLO 2 / HELLO 3).
const (
	resp2 = 2
	resp3 = 3
)

// replies appends answers to b in the connection's protocol version.
type replies struct {
	b     []byte
	proto int
}

func (w *replies) simple(s string) { w.line('+', s) }

// err writes an error; msg starts with its code ("ERR ...", "NOAUTH ...").
// Line breaks would end the reply early, so they become spaces, as in
// Redis.
func (w *replies) err(msg string) {
	w.line('-', strings.NewReplacer("\r", " ", "\n", " ").Replace(msg))
}

func (w *replies) ok() { w.simple("OK") }

func (w *replies) int(n int64) {
	w.b = append(w.b, ':')
	w.b = strconv.AppendInt(w.b, n, 10)
	w.b = append(w.b, '\r', '\n')
}

func (w *replies) bulk(v []byte) {
	w.header('$', len(v))
	w.b = append(w.b, v...)
	w.b = append(w.b, '\r', '\n')
}

func (w *replies) bulkString(s string) {
	w.header('$', len(s))
	w.b = append(w.b, s...)
	w.b = append(w.b, '\r', '\n')
}

// null is a missing value: $-1 in RESP2, _ in RESP3.
func (w *replies) null() {
	if w.proto == resp3 {
		w.b = append(w.b, '_', '\r', '\n')
		return
	}
	w.b = append(w.b, "$-1\r\n"...)
}

func (w *replies) array(n int) { w.header('*', n) }

// set is a set of n elements: ~ in RESP3, an array in RESP2.
func (w *replies) set(n int) {
	if w.proto == resp3 {
		w.header('~', n)
		return
	}
	w.header('*', n)
}

// mapOf starts a map of n pairs: % in RESP3, an array of 2n in RESP2.
func (w *replies) mapOf(n int) {
	if w.proto == resp3 {
		w.header('%', n)
		return
	}
	w.header('*', 2*n)
}

// verbatim is text (INFO, CLUSTER INFO): a verbatim string in RESP3, a
// bulk string in RESP2.
func (w *replies) verbatim(s string) {
	if w.proto != resp3 {
		w.bulkString(s)
		return
	}
	w.header('=', len(s)+4)
	w.b = append(w.b, "txt:"...)
	w.b = append(w.b, s...)
	w.b = append(w.b, '\r', '\n')
}

func (w *replies) strings(ss []string) {
	w.array(len(ss))
	for _, s := range ss {
		w.bulkString(s)
	}
}

func (w *replies) header(typ byte, n int) {
	w.b = append(w.b, typ)
	w.b = strconv.AppendInt(w.b, int64(n), 10)
	w.b = append(w.b, '\r', '\n')
}

func (w *replies) line(typ byte, s string) {
	w.b = append(w.b, typ)
	w.b = append(w.b, s...)
	w.b = append(w.b, '\r', '\n')
}
