package dht

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// key0 is 0x00 0x01 .. 0x1f, so a shifted key shows in the bytes.
var key0 = func() (k Key) {
	for i := range k {
		k[i] = byte(i)
	}
	return k
}()

// keyBytes is key0 on the wire.
var keyBytes = key0[:]

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// TestCodecBytes: each message against its bytes written out by hand
// from the layouts, both ways.
func TestCodecBytes(t *testing.T) {
	tests := []struct {
		name string
		msg  Message
		wire []byte
	}{
		{"put", Put(key0, []byte("hi"), 300, 3), cat(
			[]byte{0x00, 0x2a, 0x02, 0x8a}, // size 42 = 4+4+32+2, type 650
			[]byte{0x01, 0x2c, 0x03, 0x00}, // ttl 300, replication 3, reserved
			keyBytes, []byte("hi"))},
		{"put empty value, ttl 0", Put(key0, []byte{}, 0, 0), cat(
			[]byte{0x00, 0x28, 0x02, 0x8a, 0x00, 0x00, 0x00, 0x00}, keyBytes)},
		{"put reserved byte kept", Message{Type: TypePut, TTL: 0xffff, Replication: 0xff, Reserved: 0x7f, Key: key0, Value: []byte{0}}, cat(
			[]byte{0x00, 0x29, 0x02, 0x8a, 0xff, 0xff, 0xff, 0x7f}, keyBytes, []byte{0})},
		{"get", Get(key0), cat([]byte{0x00, 0x24, 0x02, 0x8b}, keyBytes)},
		{"success", Success(key0, []byte("value")), cat(
			[]byte{0x00, 0x29, 0x02, 0x8c}, keyBytes, []byte("value"))},
		{"success empty value", Success(key0, []byte{}), cat([]byte{0x00, 0x24, 0x02, 0x8c}, keyBytes)},
		{"failure", Failure(key0), cat([]byte{0x00, 0x24, 0x02, 0x8d}, keyBytes)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Encode(tt.msg)
			require.NoError(t, err)
			require.Equal(t, tt.wire, got, "encode")
			require.Equal(t, len(tt.wire), tt.msg.Size())
			m, err := Decode(tt.wire)
			require.NoError(t, err)
			require.Equal(t, tt.msg, m, "decode")
			m, err = ReadMessage(bytes.NewReader(tt.wire))
			require.NoError(t, err)
			require.Equal(t, tt.msg, m, "read")
		})
	}
}

// TestCodecLargest: the u16 size bounds a value to MaxValueSize.
func TestCodecLargest(t *testing.T) {
	v := bytes.Repeat([]byte{0xab}, MaxValueSize)
	b, err := Encode(Put(key0, v, 1, 1))
	require.NoError(t, err)
	require.Equal(t, []byte{0xff, 0xff, 0x02, 0x8a}, b[:4])
	m, err := Decode(b)
	require.NoError(t, err)
	require.Equal(t, v, m.Value)
	_, err = Encode(Put(key0, append(v, 0), 1, 1))
	require.ErrorIs(t, err, ErrTooLarge)
	_, err = Encode(Success(key0, bytes.Repeat([]byte{1}, MaxMessageSize-HeaderSize-KeySize+1)))
	require.ErrorIs(t, err, ErrTooLarge)
	_, err = Encode(Message{Type: 649})
	require.ErrorIs(t, err, ErrUnknownType)
}

// TestDecodeMalformed: every way a message can break the format.
func TestDecodeMalformed(t *testing.T) {
	get := cat([]byte{0x00, 0x24, 0x02, 0x8b}, keyBytes)
	tests := []struct {
		name string
		wire []byte
		want string
	}{
		{"empty", nil, "header"},
		{"short header", []byte{0x00, 0x04, 0x02}, "header"},
		{"size below header", []byte{0x00, 0x03, 0x02, 0x8b}, "size field 3"},
		{"size zero", []byte{0x00, 0x00, 0x02, 0x8b}, "size field 0"},
		{"size larger than body", cat([]byte{0x00, 0x25, 0x02, 0x8b}, keyBytes), "size field 37"},
		{"size smaller than body", cat([]byte{0x00, 0x23, 0x02, 0x8b}, keyBytes), "size field 35"},
		{"unknown type", cat([]byte{0x00, 0x24, 0x02, 0x89}, keyBytes), "unknown type 649"},
		{"get with a short key", cat([]byte{0x00, 0x23, 0x02, 0x8b}, keyBytes[:31]), "must be 36"},
		{"get with a long key", cat([]byte{0x00, 0x25, 0x02, 0x8b}, keyBytes, []byte{0}), "must be 36"},
		{"failure with a long key", cat([]byte{0x00, 0x25, 0x02, 0x8d}, keyBytes, []byte{0}), "must be 36"},
		{"put without a whole key", cat([]byte{0x00, 0x27, 0x02, 0x8a, 0, 1, 0, 0}, keyBytes[:31]), "at least 40"},
		{"put header only", []byte{0x00, 0x04, 0x02, 0x8a}, "at least 40"},
		{"success without a whole key", cat([]byte{0x00, 0x23, 0x02, 0x8c}, keyBytes[:31]), "at least 36"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.wire)
			require.ErrorIs(t, err, ErrMalformed)
			require.ErrorContains(t, err, tt.want)
		})
	}
	require.Len(t, get, 36) // the well-formed GET the cases above vary
}

// TestReadMessage: the stream reader's ends and its refusal of a size
// below the header before reading on.
func TestReadMessage(t *testing.T) {
	get := cat([]byte{0x00, 0x24, 0x02, 0x8b}, keyBytes)
	t.Run("pipelined", func(t *testing.T) {
		r := bytes.NewReader(cat(get, get))
		for range 2 {
			m, err := ReadMessage(r)
			require.NoError(t, err)
			require.Equal(t, Get(key0), m)
		}
		_, err := ReadMessage(r)
		require.ErrorIs(t, err, io.EOF)
	})
	t.Run("cut inside the body", func(t *testing.T) {
		_, err := ReadMessage(bytes.NewReader(get[:20]))
		require.ErrorIs(t, err, io.ErrUnexpectedEOF)
		require.False(t, errors.Is(err, io.EOF))
	})
	t.Run("cut inside the header", func(t *testing.T) {
		_, err := ReadMessage(bytes.NewReader(get[:2]))
		require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	})
	t.Run("size below header", func(t *testing.T) {
		_, err := ReadMessage(io.MultiReader(strings.NewReader("\x00\x02\x02\x8b"), failReader{}))
		require.ErrorIs(t, err, ErrMalformed)
	})
	t.Run("value does not alias the next message", func(t *testing.T) {
		put := cat([]byte{0x00, 0x29, 0x02, 0x8a, 0, 0, 0, 0}, keyBytes, []byte("a"))
		r := bytes.NewReader(cat(put, put))
		m1, err := ReadMessage(r)
		require.NoError(t, err)
		_, err = ReadMessage(r)
		require.NoError(t, err)
		m1.Value[0] = 'b'
		require.Equal(t, []byte("b"), m1.Value)
	})
}

// failReader fails the test's reads past the bytes it should stop at.
type failReader struct{}

func (failReader) Read([]byte) (int, error) { return 0, errors.New("read past a malformed header") }
