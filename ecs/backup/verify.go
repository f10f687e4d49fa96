package backup

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// Verify re-reads every file of the backup in dir and compares its
// checksum, record count and size with the manifest's. It returns the
// manifest and, when anything differs, an ErrCorrupt error naming each
// file that does (and why). progress, when not nil, is called with the
// bytes of each file read.
func Verify(dir string, progress func(bytes int64)) (*Manifest, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	var bad []error
	for _, f := range m.Files {
		if err := verifyFile(dir, m, f); err != nil {
			bad = append(bad, err)
		}
		if progress != nil {
			progress(f.Bytes)
		}
	}
	if len(bad) > 0 {
		return m, fmt.Errorf("%w: %d of %d files: %w", ErrCorrupt, len(bad), len(m.Files), errors.Join(bad...))
	}
	return m, nil
}

func verifyFile(dir string, m *Manifest, f FileEntry) error {
	sum, err := ReadFile(filepath.Join(dir, f.File), m.FileLimits(), nil)
	switch {
	case errors.Is(err, ErrCorrupt):
		return errors.New(strings.TrimPrefix(err.Error(), ErrCorrupt.Error()+": ")) // it names the file
	case err != nil:
		return fmt.Errorf("%s: %w", f.File, err)
	case sum.SHA256 != f.SHA256:
		return fmt.Errorf("%s: checksum mismatch: sha256 %s, manifest says %s", f.File, sum.SHA256, f.SHA256)
	case sum.Records != f.Records || sum.Bytes != f.Bytes:
		return fmt.Errorf("%s: %d records in %d bytes, manifest says %d in %d", f.File, sum.Records, sum.Bytes, f.Records, f.Bytes)
	}
	return nil
}
