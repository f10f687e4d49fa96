package backup

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
)

// A partition file is:
//
//	file   = magic record*
//	magic  = "ECSKVB1\n"
//	record = uvarint(len(ns)) ns uvarint(len(key)) key
//	         uvarint(len(value)) value uvarint(expiry_ms)
//
// ns is the record's namespace as stored (empty, a user id, or a front
// door's), expiry_ms an absolute unix time in milliseconds (0: none). The
// manifest holds each file's SHA-256, records and size: a file is only
// known to be whole by them.

// Magic opens every partition file.
const Magic = "ECSKVB1\n"

// maxNamespace bounds a namespace read from a file (ids are 16 bytes).
const maxNamespace = 1024

// Record is one key of a backup.
type Record struct {
	NS, Key, Value []byte
	ExpiryMs       int64 // absolute unix ms; 0: none
}

// FileSum is what the manifest records of a file.
type FileSum struct {
	Records int64
	Bytes   int64
	SHA256  string
}

// FileName is the name of partition p's file.
func FileName(p int) string { return fmt.Sprintf("part-%05d.ekvb", p) }

// FileWriter writes one partition file.
type FileWriter struct {
	f    *os.File
	w    *bufio.Writer
	h    hash.Hash
	sum  FileSum
	tmp  [3 * binary.MaxVarintLen64]byte
	path string
}

// CreateFile creates (or truncates) path and writes the magic.
func CreateFile(path string) (*FileWriter, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	fw := &FileWriter{f: f, h: sha256.New(), path: path}
	fw.w = bufio.NewWriterSize(io.MultiWriter(f, fw.h), 256<<10)
	if err := fw.put([]byte(Magic)); err != nil {
		fw.Abort()
		return nil, err
	}
	return fw, nil
}

func (fw *FileWriter) put(b []byte) error {
	n, err := fw.w.Write(b)
	fw.sum.Bytes += int64(n)
	return err
}

func (fw *FileWriter) putBytes(b []byte) error {
	if err := fw.put(fw.tmp[:binary.PutUvarint(fw.tmp[:], uint64(len(b)))]); err != nil {
		return err
	}
	return fw.put(b)
}

// Write appends a record.
func (fw *FileWriter) Write(r Record) error {
	for _, b := range [][]byte{r.NS, r.Key, r.Value} {
		if err := fw.putBytes(b); err != nil {
			return err
		}
	}
	if err := fw.put(fw.tmp[:binary.PutUvarint(fw.tmp[:], uint64(max(r.ExpiryMs, 0)))]); err != nil {
		return err
	}
	fw.sum.Records++
	return nil
}

// Bytes is the size written so far.
func (fw *FileWriter) Bytes() int64 { return fw.sum.Bytes }

// Close flushes and syncs the file and returns its sum.
func (fw *FileWriter) Close() (FileSum, error) {
	err := fw.w.Flush()
	if err == nil {
		err = fw.f.Sync()
	}
	if cerr := fw.f.Close(); err == nil {
		err = cerr
	}
	fw.sum.SHA256 = hex.EncodeToString(fw.h.Sum(nil))
	return fw.sum, err
}

// Abort closes and removes a file that will not be finished.
func (fw *FileWriter) Abort() {
	_ = fw.f.Close()
	_ = os.Remove(fw.path)
}

// Limits bound the fields ReadFile accepts, so a corrupt length cannot
// make it allocate without bound.
type Limits struct{ MaxKeyBytes, MaxValueBytes int }

// ReadFile reads a partition file, calling fn (when not nil) for every
// record; the slices are fn's to keep. It returns the file's sum; a
// malformed file fails with ErrCorrupt naming the file and the record.
func ReadFile(path string, lim Limits, fn func(Record) error) (FileSum, error) {
	f, err := os.Open(path)
	if err != nil {
		return FileSum{}, err
	}
	defer f.Close()
	h := sha256.New()
	cr := &countReader{r: io.TeeReader(f, h)}
	br := bufio.NewReaderSize(cr, 256<<10)
	name := filepath.Base(path)
	magic := make([]byte, len(Magic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != Magic {
		return FileSum{}, fmt.Errorf("%w: %s: not a partition file (bad magic)", ErrCorrupt, name)
	}
	var sum FileSum
	for {
		r, err := readRecord(br, lim)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return FileSum{}, fmt.Errorf("%w: %s: record %d: %v", ErrCorrupt, name, sum.Records+1, err)
		}
		sum.Records++
		if fn != nil {
			if err := fn(r); err != nil {
				return FileSum{}, err
			}
		}
	}
	sum.Bytes, sum.SHA256 = cr.n, hex.EncodeToString(h.Sum(nil))
	return sum, nil
}

// readRecord reads one record; io.EOF only at a record boundary.
func readRecord(br *bufio.Reader, lim Limits) (Record, error) {
	var r Record
	var err error
	if r.NS, err = readField(br, maxNamespace, true); err != nil {
		return r, err
	}
	if r.Key, err = readField(br, lim.MaxKeyBytes, false); err != nil {
		return r, err
	}
	if len(r.Key) == 0 {
		return r, errors.New("empty key")
	}
	if r.Value, err = readField(br, lim.MaxValueBytes, false); err != nil {
		return r, err
	}
	exp, err := binary.ReadUvarint(br)
	if err != nil || exp > 1<<62 {
		return r, fmt.Errorf("bad expiry: %v", unexpected(err))
	}
	r.ExpiryMs = int64(exp)
	return r, nil
}

// readField reads a length-prefixed field of at most limit bytes; io.EOF
// only before the first field of a record (atStart).
func readField(br *bufio.Reader, limit int, atStart bool) ([]byte, error) {
	n, err := binary.ReadUvarint(br)
	if errors.Is(err, io.EOF) && atStart {
		return nil, io.EOF
	}
	if err != nil {
		return nil, unexpected(err)
	}
	if n > uint64(limit) {
		return nil, fmt.Errorf("field of %d bytes, limit is %d", n, limit)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(br, b); err != nil {
		return nil, unexpected(err)
	}
	return b, nil
}

// unexpected turns an end of file inside a record into an error of its own.
func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
