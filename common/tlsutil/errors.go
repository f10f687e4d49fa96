package tlsutil

import "errors"

var (
	// ErrExists refuses to overwrite a certificate or key file.
	ErrExists = errors.New("tlsutil: file exists")
	// ErrBadPEM rejects a file that holds no usable certificate or key.
	ErrBadPEM = errors.New("tlsutil: no usable PEM block")
	// ErrIncomplete rejects a TLS setup that names some of the CA,
	// certificate and key files but not all three.
	ErrIncomplete = errors.New("tlsutil: TLS needs the CA certificate, a certificate and its key")
)
