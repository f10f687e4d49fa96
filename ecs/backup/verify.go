package backup

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
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
	path := filepath.Join(dir, f.File)
	sum, err := ReadFile(path, m.FileLimits(), nil)
	switch {
	case errors.Is(err, ErrCorrupt):
		why := strings.TrimPrefix(err.Error(), ErrCorrupt.Error()+": ") // it names the file
		// Where the damage lands (a length, a payload) decides whether
		// parsing fails at all; the checksum says the same for any byte.
		if got, herr := fileSHA256(path); herr == nil && got != f.SHA256 {
			return fmt.Errorf("%s: checksum mismatch: sha256 %s, manifest says %s (%s)", f.File, got, f.SHA256, why)
		}
		return errors.New(why)
	case err != nil:
		return fmt.Errorf("%s: %w", f.File, err)
	case sum.SHA256 != f.SHA256:
		return fmt.Errorf("%s: checksum mismatch: sha256 %s, manifest says %s", f.File, sum.SHA256, f.SHA256)
	case sum.Records != f.Records || sum.Bytes != f.Bytes:
		return fmt.Errorf("%s: %d records in %d bytes, manifest says %d in %d", f.File, sum.Records, sum.Bytes, f.Records, f.Bytes)
	}
	return nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
