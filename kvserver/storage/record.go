package storage

import (
	"encoding/binary"
	"fmt"
)

// recordHeaderLen is the size of seq + expiry in front of the value.
const recordHeaderLen = 16

// Record is a stored value with the seq of the write that produced it and its
// absolute expiry (unix ms, 0 = never).
type Record struct {
	Seq      uint64
	ExpiryMs int64
	Value    []byte
}

// Expired reports whether r has an expiry at or before nowMs. nowMs = 0 never
// expires anything (ExpiryMs values are positive unix times).
func (r Record) Expired(nowMs int64) bool {
	return r.ExpiryMs != 0 && r.ExpiryMs <= nowMs
}

// EncodeRecord returns seq (8 bytes BE) | expiry (8 bytes BE) | value.
func EncodeRecord(r Record) []byte {
	return AppendRecord(make([]byte, 0, recordHeaderLen+len(r.Value)), r)
}

// AppendRecord appends EncodeRecord(r) to dst and returns the extended slice.
func AppendRecord(dst []byte, r Record) []byte {
	dst = binary.BigEndian.AppendUint64(dst, r.Seq)
	dst = binary.BigEndian.AppendUint64(dst, uint64(r.ExpiryMs))
	return append(dst, r.Value...)
}

// DecodeRecord parses an encoded record; Value aliases b.
func DecodeRecord(b []byte) (Record, error) {
	if len(b) < recordHeaderLen {
		return Record{}, fmt.Errorf("record of %d bytes: %w", len(b), ErrCorruptRecord)
	}
	return Record{
		Seq:      binary.BigEndian.Uint64(b),
		ExpiryMs: int64(binary.BigEndian.Uint64(b[8:])),
		Value:    b[recordHeaderLen:],
	}, nil
}

// decodeUint64 parses an 8-byte BE state value.
func decodeUint64(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("state value of %d bytes: %w", len(b), ErrCorruptRecord)
	}
	return binary.BigEndian.Uint64(b), nil
}
