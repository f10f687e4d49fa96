package dht

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecode: Decode never panics; what it accepts encodes back to the
// same bytes, and what it refuses is ErrMalformed.
func FuzzDecode(f *testing.F) {
	for _, m := range []Message{Put(key0, []byte("v"), 60, 2), Get(key0), Success(key0, []byte("value")), Failure(key0)} {
		b, err := Encode(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x00, 0x04, 0x02, 0x8a})
	f.Add([]byte{0x00, 0x03})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode(%x): %v is not ErrMalformed", b, err)
			}
			return
		}
		got, err := Encode(m)
		if err != nil {
			t.Fatalf("Encode(Decode(%x)): %v", b, err)
		}
		if !bytes.Equal(got, b) {
			t.Fatalf("Encode(Decode(%x)) = %x", b, got)
		}
		if r, err := ReadMessage(bytes.NewReader(b)); err != nil || r.Type != m.Type || r.Key != m.Key || !bytes.Equal(r.Value, m.Value) {
			t.Fatalf("ReadMessage(%x) = %+v, %v; Decode gave %+v", b, r, err, m)
		}
	})
}
