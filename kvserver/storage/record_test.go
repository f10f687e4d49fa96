package storage

import (
	"bytes"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRecordRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		r    Record
	}{
		{"empty", Record{}},
		{"value", Record{Seq: 1, Value: []byte("v")}},
		{"expiry", Record{Seq: math.MaxUint64, ExpiryMs: 1_700_000_000_000, Value: []byte{0, 0xff}}},
		{"negative expiry", Record{Seq: 2, ExpiryMs: -5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := EncodeRecord(tt.r)
			require.Len(t, b, recordHeaderLen+len(tt.r.Value))
			got, err := DecodeRecord(b)
			require.NoError(t, err)
			require.Equal(t, tt.r.Seq, got.Seq)
			require.Equal(t, tt.r.ExpiryMs, got.ExpiryMs)
			require.True(t, bytes.Equal(tt.r.Value, got.Value))
		})
	}
}

func TestDecodeRecordShort(t *testing.T) {
	for n := range recordHeaderLen {
		_, err := DecodeRecord(make([]byte, n))
		require.ErrorIs(t, err, ErrCorruptRecord)
	}
}

func TestRecordExpired(t *testing.T) {
	tests := []struct {
		name   string
		expiry int64
		now    int64
		want   bool
	}{
		{"no expiry", 0, 1 << 50, false},
		{"before", 100, 99, false},
		{"at", 100, 100, true},
		{"after", 100, 101, true},
		{"now zero disables", 100, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, Record{ExpiryMs: tt.expiry}.Expired(tt.now))
		})
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add([]byte{}, uint64(0), int64(0), []byte{})
	f.Add(make([]byte, 16), uint64(7), int64(-1), []byte("value"))
	f.Add([]byte("0123456789abcdefvalue"), uint64(math.MaxUint64), int64(math.MaxInt64), []byte{0})
	f.Fuzz(func(t *testing.T, raw []byte, seq uint64, expiry int64, value []byte) {
		if r, err := DecodeRecord(raw); err == nil {
			if !bytes.Equal(raw, EncodeRecord(r)) {
				t.Fatalf("re-encode of %x differs", raw)
			}
		} else if len(raw) >= recordHeaderLen {
			t.Fatalf("decode of %d bytes failed: %v", len(raw), err)
		}
		in := Record{Seq: seq, ExpiryMs: expiry, Value: value}
		got, err := DecodeRecord(EncodeRecord(in))
		if err != nil || got.Seq != seq || got.ExpiryMs != expiry || !bytes.Equal(got.Value, value) {
			t.Fatalf("round trip of %+v = %+v, %v", in, got, err)
		}
	})
}
