package dht

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Message types (VoidPhone DHT API).
const (
	TypePut     uint16 = 650
	TypeGet     uint16 = 651
	TypeSuccess uint16 = 652
	TypeFailure uint16 = 653
)

// Sizes of the wire format, in bytes.
const (
	HeaderSize = 4  // size:u16 | type:u16
	KeySize    = 32 // every key
	// putFixed is what a PUT carries before its value:
	// ttl:u16 | replication:u8 | reserved:u8 | key.
	putFixed = 4 + KeySize
	// MaxMessageSize is the largest message the u16 size can describe.
	MaxMessageSize = 0xffff
	// MaxValueSize is the largest value a PUT or SUCCESS can carry.
	MaxValueSize = MaxMessageSize - HeaderSize - putFixed
)

// Key is a DHT key.
type Key [KeySize]byte

// Message is one decoded message. Which fields mean something depends on
// Type: TTL and Replication only for a PUT, Value for a PUT and a SUCCESS.
type Message struct {
	Type        uint16
	TTL         uint16 // seconds; 0 asks for the longest TTL the cluster allows
	Replication uint8  // a hint; the cluster keeps its own replication factor
	Reserved    uint8  // sent as is by Encode, ignored by the server
	Key         Key
	Value       []byte
}

// Put builds a DHT PUT.
func Put(key Key, value []byte, ttl uint16, replication uint8) Message {
	return Message{Type: TypePut, TTL: ttl, Replication: replication, Key: key, Value: value}
}

// Get builds a DHT GET.
func Get(key Key) Message { return Message{Type: TypeGet, Key: key} }

// Success builds a DHT SUCCESS.
func Success(key Key, value []byte) Message {
	return Message{Type: TypeSuccess, Key: key, Value: value}
}

// Failure builds a DHT FAILURE.
func Failure(key Key) Message { return Message{Type: TypeFailure, Key: key} }

// Size is the encoded size of m, header included.
func (m Message) Size() int {
	switch m.Type {
	case TypePut:
		return HeaderSize + putFixed + len(m.Value)
	case TypeSuccess:
		return HeaderSize + KeySize + len(m.Value)
	}
	return HeaderSize + KeySize
}

// Encode returns m on the wire.
func Encode(m Message) ([]byte, error) { return AppendEncode(nil, m) }

// AppendEncode appends m on the wire to b. It fails for an unknown type or
// a value too large for the u16 size.
func AppendEncode(b []byte, m Message) ([]byte, error) {
	switch m.Type {
	case TypePut, TypeGet, TypeSuccess, TypeFailure:
	default:
		return b, fmt.Errorf("%w: %d", ErrUnknownType, m.Type)
	}
	n := m.Size()
	if n > MaxMessageSize {
		return b, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, n, MaxMessageSize)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(n))
	b = binary.BigEndian.AppendUint16(b, m.Type)
	if m.Type == TypePut {
		b = binary.BigEndian.AppendUint16(b, m.TTL)
		b = append(b, m.Replication, m.Reserved)
	}
	b = append(b, m.Key[:]...)
	if m.Type == TypePut || m.Type == TypeSuccess {
		b = append(b, m.Value...)
	}
	return b, nil
}

// Decode decodes exactly one message, b being all of it. Any
// inconsistency is an error wrapping ErrMalformed: a size field below the
// header or other than len(b), an unknown type, a body too short for its
// type, or a GET or FAILURE longer than its key. The Value aliases b.
func Decode(b []byte) (Message, error) {
	if len(b) < HeaderSize {
		return Message{}, fmt.Errorf("%w: %d bytes, the header alone is %d", ErrMalformed, len(b), HeaderSize)
	}
	size, typ := int(binary.BigEndian.Uint16(b)), binary.BigEndian.Uint16(b[2:])
	if size != len(b) {
		return Message{}, fmt.Errorf("%w: size field %d, message %d bytes", ErrMalformed, size, len(b))
	}
	body := b[HeaderSize:]
	m := Message{Type: typ}
	switch typ {
	case TypePut:
		if len(body) < putFixed {
			return Message{}, fmt.Errorf("%w: PUT of %d bytes, at least %d", ErrMalformed, size, HeaderSize+putFixed)
		}
		m.TTL, m.Replication, m.Reserved = binary.BigEndian.Uint16(body), body[2], body[3]
		body = body[4:]
	case TypeSuccess:
		if len(body) < KeySize {
			return Message{}, fmt.Errorf("%w: SUCCESS of %d bytes, at least %d", ErrMalformed, size, HeaderSize+KeySize)
		}
	case TypeGet, TypeFailure:
		if len(body) != KeySize {
			return Message{}, fmt.Errorf("%w: type %d of %d bytes, must be %d (a %d-byte key)", ErrMalformed, typ, size, HeaderSize+KeySize, KeySize)
		}
	default:
		return Message{}, fmt.Errorf("%w: unknown type %d", ErrMalformed, typ)
	}
	copy(m.Key[:], body)
	if typ == TypePut || typ == TypeSuccess {
		m.Value = body[KeySize:]
	}
	return m, nil
}

// ReadMessage reads one message from r and decodes it. It returns io.EOF
// when r ends before a message begins, and an error wrapping ErrMalformed
// for a size field below the header before reading further. Each message
// has a buffer of its own, which its Value aliases.
func ReadMessage(r io.Reader) (Message, error) {
	var hdr [HeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return Message{}, err
	}
	size := int(binary.BigEndian.Uint16(hdr[:]))
	if size < HeaderSize {
		return Message{}, fmt.Errorf("%w: size field %d is below the %d-byte header", ErrMalformed, size, HeaderSize)
	}
	buf := make([]byte, size)
	copy(buf, hdr[:])
	if _, err := io.ReadFull(r, buf[HeaderSize:]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // the stream ended inside a message
		}
		return Message{}, fmt.Errorf("dht: message cut short: %w", err)
	}
	return Decode(buf)
}
