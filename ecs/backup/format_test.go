package backup

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/stretchr/testify/require"
)

var testLimits = Limits{MaxKeyBytes: 1024, MaxValueBytes: 1 << 20}

func testRecords(n int) []Record {
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = Record{Key: []byte(fmt.Sprintf("k%04d", i)), Value: []byte(fmt.Sprintf("value-%d", i))}
		switch i % 3 {
		case 1:
			recs[i].NS = []byte("0123456789abcdef")
		case 2:
			recs[i].ExpiryMs = 1_800_000_000_000 + int64(i)
		}
	}
	recs[0].Value = nil // an empty value is a value
	return recs
}

// writeBackup writes a backup of P partitions, each holding recs, as
// Backup does, and returns its manifest.
func writeBackup(t *testing.T, dir string, parts int, recs []Record) *Manifest {
	t.Helper()
	m := &Manifest{Format: FormatVersion, Cluster: "test", Partitions: parts, Replicas: 3,
		Limits: ringmeta.Limits{MaxKeyBytes: testLimits.MaxKeyBytes, MaxValueBytes: testLimits.MaxValueBytes}}
	for p := range parts {
		fw, err := CreateFile(filepath.Join(dir, FileName(p)))
		require.NoError(t, err)
		for _, r := range recs {
			require.NoError(t, fw.Write(r))
		}
		sum, err := fw.Close()
		require.NoError(t, err)
		m.Files = append(m.Files, FileEntry{Partition: p, File: FileName(p), Seq: uint64(p), Records: sum.Records, Bytes: sum.Bytes, SHA256: sum.SHA256})
		m.Records, m.Bytes = m.Records+sum.Records, m.Bytes+sum.Bytes
	}
	require.NoError(t, WriteManifest(dir, m))
	return m
}

// TestFileRoundTrip: every record comes back as written, namespaces,
// empty values and expiries included, and the sums agree.
func TestFileRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName(7))
	recs := testRecords(500)
	fw, err := CreateFile(path)
	require.NoError(t, err)
	for _, r := range recs {
		require.NoError(t, fw.Write(r))
	}
	wrote, err := fw.Close()
	require.NoError(t, err)
	var got []Record
	read, err := ReadFile(path, testLimits, func(r Record) error { got = append(got, r); return nil })
	require.NoError(t, err)
	require.Equal(t, wrote, read)
	require.Len(t, got, len(recs))
	for i := range recs {
		require.Equal(t, string(recs[i].NS), string(got[i].NS), i)
		require.Equal(t, string(recs[i].Key), string(got[i].Key), i)
		require.Equal(t, string(recs[i].Value), string(got[i].Value), i)
		require.Equal(t, recs[i].ExpiryMs, got[i].ExpiryMs, i)
	}
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, fi.Size(), read.Bytes)
}

// TestReadFileMalformed: a file cut inside a record, one with a length
// over the limits, and one without the magic fail with ErrCorrupt naming
// the file.
func TestReadFileMalformed(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName(0))
	fw, err := CreateFile(path)
	require.NoError(t, err)
	require.NoError(t, fw.Write(Record{Key: []byte("key"), Value: []byte("value")}))
	_, err = fw.Close()
	require.NoError(t, err)
	whole, err := os.ReadFile(path)
	require.NoError(t, err)
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"cut", whole[:len(whole)-2], "record 1: unexpected EOF"},
		{"no magic", whole[1:], "bad magic"},
		{"key too long", append([]byte(Magic), 0, 0xff, 0xff, 0x03), "limit is 1024"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, os.WriteFile(path, tc.data, 0o600))
			_, err := ReadFile(path, testLimits, nil)
			require.ErrorIs(t, err, ErrCorrupt)
			require.ErrorContains(t, err, FileName(0))
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// TestVerify: an intact backup verifies; a flipped byte, a missing file,
// a truncated file and a manifest that does not add up each fail with a
// message naming what is wrong.
func TestVerify(t *testing.T) {
	recs := testRecords(50)
	cases := []struct {
		name   string
		damage func(t *testing.T, dir string, m *Manifest)
		want   []string
	}{
		{"intact", func(*testing.T, string, *Manifest) {}, nil},
		{"byte flipped", func(t *testing.T, dir string, _ *Manifest) {
			flipByte(t, filepath.Join(dir, FileName(2)), 100)
		}, []string{"1 of 4 files", FileName(2) + ": checksum mismatch"}},
		{"file missing", func(t *testing.T, dir string, _ *Manifest) {
			require.NoError(t, os.Remove(filepath.Join(dir, FileName(3))))
		}, []string{FileName(3), "no such file"}},
		{"file truncated at a record", func(t *testing.T, dir string, m *Manifest) {
			require.NoError(t, os.Truncate(filepath.Join(dir, FileName(1)), int64(len(Magic))))
		}, []string{FileName(1) + ": checksum mismatch"}},
		{"file cut inside a record", func(t *testing.T, dir string, m *Manifest) {
			require.NoError(t, os.Truncate(filepath.Join(dir, FileName(1)), int64(len(Magic))+3))
		}, []string{FileName(1) + ": checksum mismatch", "record 1: unexpected EOF"}},
		{"length byte flipped", func(t *testing.T, dir string, m *Manifest) {
			flipByte(t, filepath.Join(dir, FileName(3)), len(Magic)+1) // the first key's length
		}, []string{FileName(3) + ": checksum mismatch", "record "}},
		{"manifest totals", func(t *testing.T, dir string, m *Manifest) {
			m.Records++
			require.NoError(t, WriteManifest(dir, m))
		}, []string{ManifestName, "totals"}},
		{"manifest lacks a file", func(t *testing.T, dir string, m *Manifest) {
			m.Files = m.Files[:3]
			require.NoError(t, WriteManifest(dir, m))
		}, []string{"3 files for 4 partitions"}},
		{"no manifest", func(t *testing.T, dir string, _ *Manifest) {
			require.NoError(t, os.Remove(filepath.Join(dir, ManifestName)))
		}, []string{"has no " + ManifestName}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			m := writeBackup(t, dir, 4, recs)
			tc.damage(t, dir, m)
			got, err := Verify(dir, nil)
			if tc.want == nil {
				require.NoError(t, err)
				require.Equal(t, int64(4*len(recs)), got.Records)
				return
			}
			require.ErrorIs(t, err, ErrCorrupt)
			for _, w := range tc.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
}

func flipByte(t *testing.T, path string, off int) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	b[off] ^= 0x01
	require.NoError(t, os.WriteFile(path, b, 0o600))
}

// TestIsUserKey: restore writes only user records into etcd.
func TestIsUserKey(t *testing.T) {
	for key, want := range map[string]bool{
		"users/alice": true, "kept/bob": true, "tombstones/0123456789abcdef": true,
		"ring": false, "users/": false, "users/a/b": false, "ecs/leader": false, "auth": false,
	} {
		require.Equal(t, want, isUserKey(key), key)
	}
}
