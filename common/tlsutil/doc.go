// Package tlsutil holds the TLS helpers every part shares (DESIGN §8): a
// small certificate authority for `ecs certs init` and `ecs start --secure`,
// tls.Config builders for servers and clients, and the role a peer's
// certificate grants.
//
// Two roles exist, carried in the certificate's common name: cluster members
// (the ECS and kvservers, RoleMember) may replicate, transfer partitions,
// read digests and use etcd; clients (RoleClient) may only call the KV
// service. Every link requires a certificate signed by the cluster CA.
//
// Everything here is stateless and safe for concurrent use.
package tlsutil
