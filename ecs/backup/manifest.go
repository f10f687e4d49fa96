package backup

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/ecskv/ecskv/common/ringmeta"
)

// ManifestName is the manifest's file name in a backup directory. It is
// written last: a directory without one holds no finished backup.
const ManifestName = "manifest.json"

// FormatVersion is the version of the manifest and the files.
const FormatVersion = 1

// Manifest describes a backup.
type Manifest struct {
	Format  int    `json:"format"`
	Cluster string `json:"cluster"`
	// Epoch is the ring's epoch when the backup began.
	Epoch      uint64          `json:"epoch"`
	Partitions int             `json:"partitions"`
	Replicas   int             `json:"replicas"`
	Limits     ringmeta.Limits `json:"limits"`
	Auth       bool            `json:"auth,omitempty"`
	// StartedUnixMs and DurationMs: when the backup began and how long it took.
	StartedUnixMs int64 `json:"started_unix_ms"`
	DurationMs    int64 `json:"duration_ms"`
	// Records and Bytes sum the files'.
	Records int64       `json:"records"`
	Bytes   int64       `json:"bytes"`
	Files   []FileEntry `json:"files"`
	// Etcd holds the user records (users, kept users, tombstones) that
	// give the namespaces their owners, by key under the cluster's root.
	Etcd []EtcdEntry `json:"etcd,omitempty"`
}

// FileEntry is one partition's file.
type FileEntry struct {
	Partition int    `json:"partition"`
	File      string `json:"file"`
	// Seq is the partition's seq at its snapshot: the file holds every
	// write up to it and none after, all committed on every member.
	Seq          uint64 `json:"seq"`
	Tail         string `json:"tail"`
	ChainVersion uint64 `json:"chain_version"`
	// TakenUnixMs is the tail's clock at the snapshot; records expired by
	// then are left out.
	TakenUnixMs int64  `json:"taken_unix_ms"`
	Records     int64  `json:"records"`
	Bytes       int64  `json:"bytes"`
	SHA256      string `json:"sha256"`
}

// EtcdEntry is one etcd key of the cluster, relative to its root.
type EtcdEntry struct {
	Key   string `json:"key"`
	Value []byte `json:"value"`
}

// FileLimits are the bounds a reader of this backup's files applies.
func (m *Manifest) FileLimits() Limits {
	return Limits{MaxKeyBytes: m.Limits.MaxKeyBytes, MaxValueBytes: m.Limits.MaxValueBytes}
}

// WriteManifest writes m into dir, through a temporary file and a rename so
// that a manifest is never half written.
func WriteManifest(dir string, m *Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, ManifestName+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, ManifestName))
}

// ReadManifest reads and checks dir's manifest.
func ReadManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s has no %s (not a backup, or one that did not finish)", ErrCorrupt, dir, ManifestName)
	}
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, ManifestName, err)
	}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, ManifestName, err)
	}
	return &m, nil
}

// check makes sure the manifest lists one file per partition, under its
// own name, and that the totals add up.
func (m *Manifest) check() error {
	switch {
	case m.Format != FormatVersion:
		return fmt.Errorf("format %d, this ecs reads %d", m.Format, FormatVersion)
	case m.Partitions <= 0 || m.Partitions > ringmeta.MaxPartitions:
		return fmt.Errorf("%d partitions", m.Partitions)
	case len(m.Files) != m.Partitions:
		return fmt.Errorf("%d files for %d partitions", len(m.Files), m.Partitions)
	case m.Limits.MaxKeyBytes <= 0 || m.Limits.MaxValueBytes < 0:
		return fmt.Errorf("limits %+v", m.Limits)
	}
	var recs, bytes int64
	for i, f := range m.Files {
		if f.Partition != i || f.File != FileName(i) {
			return fmt.Errorf("file %d is %q of partition %d; want %q of partition %d", i, f.File, f.Partition, FileName(i), i)
		}
		recs, bytes = recs+f.Records, bytes+f.Bytes
	}
	if recs != m.Records || bytes != m.Bytes {
		return fmt.Errorf("totals %d records, %d bytes; the files add up to %d, %d", m.Records, m.Bytes, recs, bytes)
	}
	return nil
}

// sortFiles orders the entries by partition.
func (m *Manifest) sortFiles() {
	slices.SortFunc(m.Files, func(a, b FileEntry) int { return a.Partition - b.Partition })
}
