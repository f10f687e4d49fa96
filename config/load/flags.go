package load

import "github.com/spf13/pflag"

// AddTLSFlags adds the certificate flags every binary shares; mine names
// the files of --certs-dir the binary uses. etcd adds the flags for an
// external etcd with a CA of its own.
func AddTLSFlags(f *pflag.FlagSet, mine string, etcd bool) {
	f.String("certs-dir", "", "`DIR` of certificates made by 'ecs certs init' (ca.crt, "+mine+")")
	f.String("cacert", "", "CA certificate of the cluster (overrides --certs-dir)")
	f.String("cert", "", "certificate of this program (overrides --certs-dir)")
	f.String("key", "", "private key of --cert")
	if etcd {
		f.String("etcd-cacert", "", "CA certificate of an external etcd (default --cacert)")
		f.String("etcd-cert", "", "client certificate for an external etcd (default --cert)")
		f.String("etcd-key", "", "private key of --etcd-cert (default --key)")
	}
}
