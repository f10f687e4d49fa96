package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// MaxPartitions bounds the partition count P: data partitions are in
// [0, MaxPartitions), so the 2-byte prefix 0xFFFF is free for per-partition state.
const MaxPartitions = 1 << 15

// Reserved state keys: 0xFF 0xFF | partition (2 bytes BE) | kind, then a
// suffix for the kinds that hold many records.
const (
	stateTag      = 0xFF
	stateKeyLen   = 5
	stateApplied  = 0x01 // applied_seq, 8 bytes BE
	stateMeta     = 0x02 // chain version 8 | epoch 8 | flags 1 (the old form: version 8)
	stateLog      = 0x03 // | seq 8 BE -> kvpb.Update of the entry applied at seq
	stateDedup    = 0x04 // | client id 8 BE | client seq 8 BE -> seq 8 | status 4 | wall ms 8
	stateTruncate = 0x05 // 8 bytes BE: every log record <= it is deleted
)

// ValidatePartition returns ErrBadPartition unless 0 <= p < MaxPartitions.
func ValidatePartition(p int) error {
	if p < 0 || p >= MaxPartitions {
		return fmt.Errorf("partition %d: %w", p, ErrBadPartition)
	}
	return nil
}

// ValidateNamespace returns ErrBadNamespace if ns contains a 0x00 byte.
func ValidateNamespace(ns []byte) error {
	if bytes.IndexByte(ns, 0) >= 0 {
		return ErrBadNamespace
	}
	return nil
}

// EncodeKey returns partition (2 bytes BE) | ns | 0x00 | key. It panics if the
// partition or namespace is invalid (see ValidatePartition, ValidateNamespace):
// Store methods validate before encoding, other callers must too.
func EncodeKey(partition int, ns, key []byte) []byte {
	return AppendKey(make([]byte, 0, 3+len(ns)+len(key)), partition, ns, key)
}

// AppendKey appends EncodeKey(partition, ns, key) to dst and returns the
// extended slice. It panics on invalid input, like EncodeKey.
func AppendKey(dst []byte, partition int, ns, key []byte) []byte {
	if err := ValidatePartition(partition); err != nil {
		panic(fmt.Errorf("storage.AppendKey: %w", err))
	}
	if err := ValidateNamespace(ns); err != nil {
		panic(fmt.Errorf("storage.AppendKey: %w", err))
	}
	return appendKeyUnchecked(dst, partition, ns, key)
}

// appendKeyUnchecked is AppendKey for arguments already validated.
func appendKeyUnchecked(dst []byte, partition int, ns, key []byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(partition))
	dst = append(dst, ns...)
	dst = append(dst, 0)
	return append(dst, key...)
}

// DecodeKey splits an encoded data key. ns and key alias k. State keys and
// anything else not produced by EncodeKey return ErrBadKey.
func DecodeKey(k []byte) (partition int, ns, key []byte, err error) {
	if len(k) < 3 {
		return 0, nil, nil, ErrBadKey
	}
	partition = int(binary.BigEndian.Uint16(k))
	if partition >= MaxPartitions {
		return 0, nil, nil, ErrBadKey
	}
	i := bytes.IndexByte(k[2:], 0)
	if i < 0 {
		return 0, nil, nil, ErrBadKey
	}
	return partition, k[2 : 2+i], k[3+i:], nil
}

// partitionBounds returns [lo, hi) covering every data key of partition p.
func partitionBounds(p int) (lo, hi []byte) {
	lo = binary.BigEndian.AppendUint16(make([]byte, 0, 2), uint16(p))
	hi = binary.BigEndian.AppendUint16(make([]byte, 0, 2), uint16(p+1))
	return lo, hi
}

// stateBounds returns [lo, hi) covering every state key of partition p.
func stateBounds(p int) (lo, hi []byte) {
	lo = binary.BigEndian.AppendUint16([]byte{stateTag, stateTag}, uint16(p))
	hi = binary.BigEndian.AppendUint16([]byte{stateTag, stateTag}, uint16(p+1))
	return lo, hi
}

// stateKey returns the reserved key holding state kind for partition p.
func stateKey(p int, kind byte) []byte {
	return appendStateKey(make([]byte, 0, stateKeyLen), p, kind)
}

// appendStateKey appends p's state key of kind to dst.
func appendStateKey(dst []byte, p int, kind byte) []byte {
	dst = append(dst, stateTag, stateTag)
	dst = binary.BigEndian.AppendUint16(dst, uint16(p))
	return append(dst, kind)
}

// keyPartition returns the partition prefix of an encoded key (data or state).
func keyPartition(k []byte) int {
	if len(k) >= 4 && k[0] == stateTag && k[1] == stateTag {
		return int(binary.BigEndian.Uint16(k[2:]))
	}
	return int(binary.BigEndian.Uint16(k))
}

// logKey returns the key of partition p's log record for seq.
func logKey(p int, seq uint64) []byte {
	// Sized whole, the key stays on the stack where it does not escape
	// (a batch copies its keys): no allocation per write.
	k := appendStateKey(make([]byte, 0, stateKeyLen+8), p, stateLog)
	return binary.BigEndian.AppendUint64(k, seq)
}

// dedupKey returns the key of partition p's dedup record for a request id.
func dedupKey(p int, id DedupID) []byte {
	k := appendStateKey(make([]byte, 0, dedupKeyLen), p, stateDedup)
	k = binary.BigEndian.AppendUint64(k, id.Client)
	return binary.BigEndian.AppendUint64(k, id.Seq)
}

// kindBounds returns [lo, hi) covering every record of one state kind of p.
func kindBounds(p int, kind byte) (lo, hi []byte) {
	return stateKey(p, kind), stateKey(p, kind+1)
}
