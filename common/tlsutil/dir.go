package tlsutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Files names the PEM files of one TLS identity: the CA to trust, and the
// holder's certificate and key.
type Files struct {
	CA, Cert, Key string
}

// Enabled reports whether any file is named (TLS is on).
func (f Files) Enabled() bool { return f.CA != "" || f.Cert != "" || f.Key != "" }

// Check reports a partial setup or a file that cannot be read, naming it.
func (f Files) Check() error {
	if !f.Enabled() {
		return nil
	}
	if f.CA == "" || f.Cert == "" || f.Key == "" {
		return fmt.Errorf("%w (ca %q, cert %q, key %q)", ErrIncomplete, f.CA, f.Cert, f.Key)
	}
	for _, p := range []string{f.CA, f.Cert, f.Key} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("tlsutil: %w", err)
		}
	}
	return nil
}

// A certificate directory (`ecs certs init`) holds ca.crt and ca.key, and
// NAME.crt and NAME.key per holder: "ecs", each server id, each client.
const (
	caName = "ca"
	// ECSName is the ECS's certificate in a certificate directory; admin
	// commands use it too.
	ECSName = "ecs"
	// ClientName is the default client certificate's name.
	ClientName = "client"
)

// DirFiles returns the files of holder name in certificate directory dir.
func DirFiles(dir, name string) Files {
	return Files{
		CA:   filepath.Join(dir, caName+".crt"),
		Cert: filepath.Join(dir, name+".crt"),
		Key:  filepath.Join(dir, name+".key"),
	}
}

// Server is one kvserver of a DirSpec.
type Server struct {
	ID    string
	Hosts []string
}

// DirSpec is what InitDir creates.
type DirSpec struct {
	ECSHosts []string // hosts the ECS (and an embedded etcd) serve on
	Servers  []Server
	Clients  []string // client certificate names
	Validity time.Duration
}

// InitDir creates a new CA in dir and issues every certificate of spec. It
// refuses to touch a directory that already holds a CA, so a second run
// cannot orphan the certificates a cluster uses. It returns the files
// written.
func InitDir(dir string, spec DirSpec) ([]string, error) {
	caFiles := DirFiles(dir, caName)
	if _, err := os.Stat(caFiles.CA); err == nil {
		return nil, fmt.Errorf("%w: %s (use a new directory, or `ecs certs add` to issue more)", ErrExists, caFiles.CA)
	}
	leaves := append([]Leaf{{Name: ECSName, Role: RoleMember, Hosts: spec.ECSHosts}}, spec.leaves()...)
	if err := refuseExisting(dir, append(leaves, Leaf{Name: caName})); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("tlsutil: %w", err)
	}
	ca, err := NewCA("ecskv CA", 10*spec.Validity)
	if err != nil {
		return nil, err
	}
	caKey, err := ca.KeyPEM()
	if err != nil {
		return nil, err
	}
	if err := writeNew(caFiles.Cert, ca.CertPEM, 0o644); err != nil {
		return nil, err
	}
	if err := writeNew(caFiles.Key, caKey, 0o600); err != nil {
		return nil, err
	}
	written, err := issueAll(dir, ca, leaves, spec.Validity)
	return append([]string{caFiles.Cert, caFiles.Key}, written...), err
}

// AddToDir issues the server and client certificates of spec (not the
// ECS's) with the CA of dir, for hosts that join later. It refuses any that
// exist.
func AddToDir(dir string, spec DirSpec) ([]string, error) {
	leaves := spec.leaves()
	if err := refuseExisting(dir, leaves); err != nil {
		return nil, err
	}
	caFiles := DirFiles(dir, caName)
	ca, err := LoadCA(caFiles.Cert, caFiles.Key)
	if err != nil {
		return nil, err
	}
	return issueAll(dir, ca, leaves, spec.Validity)
}

// leaves lists the servers' and clients' certificates of spec.
func (spec DirSpec) leaves() []Leaf {
	var out []Leaf
	for _, s := range spec.Servers {
		out = append(out, Leaf{Name: s.ID, Role: RoleMember, Hosts: s.Hosts})
	}
	for _, c := range spec.Clients {
		out = append(out, Leaf{Name: c, Role: RoleClient})
	}
	return out
}

// refuseExisting fails before anything is written when a file of leaves
// exists, so a refused run leaves the directory as it was.
func refuseExisting(dir string, leaves []Leaf) error {
	for _, l := range leaves {
		f := DirFiles(dir, l.Name)
		for _, p := range []string{f.Cert, f.Key} {
			if _, err := os.Stat(p); err == nil {
				return fmt.Errorf("%w: %s", ErrExists, p)
			}
		}
	}
	return nil
}

func issueAll(dir string, ca *CA, leaves []Leaf, validity time.Duration) ([]string, error) {
	var written []string
	for _, l := range leaves {
		l.Validity = validity
		f, err := issueTo(dir, ca, l)
		if err != nil {
			return written, err
		}
		written = append(written, f.Cert, f.Key)
	}
	return written, nil
}

// EnsureLeaf issues leaf with the CA of dir unless dir already holds its
// certificate; `ecs start --secure` calls it for every server it launches.
func EnsureLeaf(dir string, leaf Leaf) (Files, error) {
	f := DirFiles(dir, leaf.Name)
	if _, err := os.Stat(f.Cert); err == nil {
		return f, nil
	}
	caFiles := DirFiles(dir, caName)
	ca, err := LoadCA(caFiles.Cert, caFiles.Key)
	if err != nil {
		return Files{}, err
	}
	return issueTo(dir, ca, leaf)
}

func issueTo(dir string, ca *CA, l Leaf) (Files, error) {
	cert, key, err := ca.Issue(l)
	if err != nil {
		return Files{}, err
	}
	f := DirFiles(dir, l.Name)
	// The key first: a certificate without its key would look complete.
	if err := writeNew(f.Key, key, 0o600); err != nil {
		return Files{}, err
	}
	if err := writeNew(f.Cert, cert, 0o644); err != nil {
		return Files{}, err
	}
	return f, nil
}

// writeNew writes a file that must not exist yet.
func writeNew(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%w: %s", ErrExists, path)
	}
	if err != nil {
		return fmt.Errorf("tlsutil: %w", err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("tlsutil: write %s: %w", path, err)
	}
	return nil
}
