package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ecskv/ecskv/common/tlsutil"
)

// Enabled reports whether any TLS file or directory is configured.
func (t TLS) Enabled() bool {
	return t.CertsDir != "" || t.CACert != "" || t.Cert != "" || t.Key != ""
}

// Files returns the TLS files of holder name (its file name in CertsDir:
// "ecs", a server id, "client"); explicitly named files win. All empty
// means plaintext.
func (t TLS) Files(name string) tlsutil.Files {
	if !t.Enabled() {
		return tlsutil.Files{}
	}
	f := tlsutil.Files{CA: t.CACert, Cert: t.Cert, Key: t.Key}
	if t.CertsDir != "" {
		d := tlsutil.DirFiles(t.CertsDir, name)
		f.CA, f.Cert, f.Key = or(f.CA, d.CA), or(f.Cert, d.Cert), or(f.Key, d.Key)
	}
	return f
}

// EtcdFiles returns the files for dialing etcd: the etcd-* files where set,
// else those of Files.
func (t TLS) EtcdFiles(name string) tlsutil.Files {
	f := t.Files(name)
	if t.EtcdCACert == "" && t.EtcdCert == "" && t.EtcdKey == "" {
		return f
	}
	return tlsutil.Files{CA: or(t.EtcdCACert, f.CA), Cert: or(t.EtcdCert, f.Cert), Key: or(t.EtcdKey, f.Key)}
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// checkTLS reports a partial setup or a missing file under the key that
// names it. exist is false when missing files will be created (ecs start
// --secure), so only files named one by one must exist.
func checkTLS(p *problems, t TLS, name string, exist bool) {
	if t.CertsDir != "" && exist {
		if fi, err := os.Stat(t.CertsDir); err != nil || !fi.IsDir() {
			p.addf("certs-dir", "must be a directory of certificates (ecs certs init), got %q", t.CertsDir)
			return
		}
	}
	f := t.Files(name)
	ef := t.EtcdFiles(name)
	// etcd TLS may be on alone: ecskv's own links stay plaintext then.
	on, etcdOn := t.Enabled(), ef.Enabled()
	for _, c := range []struct {
		key, set, path string
		on             bool
	}{
		{"cacert", t.CACert, f.CA, on}, {"cert", t.Cert, f.Cert, on}, {"key", t.Key, f.Key, on},
		{"etcd-cacert", t.EtcdCACert, ef.CA, etcdOn}, {"etcd-cert", t.EtcdCert, ef.Cert, etcdOn},
		{"etcd-key", t.EtcdKey, ef.Key, etcdOn},
	} {
		if !exist && c.set == "" {
			continue
		}
		switch {
		case c.path == "" && c.on:
			p.addf(c.key, "must be set when TLS is on (or give --certs-dir)")
		case c.path == "":
		default:
			if _, err := os.Stat(c.path); err != nil {
				p.addf(c.key, "cannot read %q: %v", c.path, err)
			}
		}
	}
}

// AuthOn reports whether the ECS creates the cluster with authentication.
func (c ECS) AuthOn() bool { return c.Auth || c.Secure }

// CertsTLS returns the ECS's TLS settings with --secure's default
// directory, <data-dir>/certs, filled in.
func (c ECS) CertsTLS() TLS {
	t := c.TLS
	if c.Secure && t.CertsDir == "" && t.CACert == "" {
		t.CertsDir = filepath.Join(c.DataDir, "certs")
	}
	return t
}

// ReadPassword returns the client's password: the first line of
// PasswordFile when set, else Password (ECSKV_PASSWORD).
func (c Client) ReadPassword() (string, error) {
	if c.PasswordFile == "" {
		return c.Password, nil
	}
	b, err := os.ReadFile(c.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("%w: password-file: %v", ErrInvalid, err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSuffix(line, "\r"), nil
}
