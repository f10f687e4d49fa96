// Package etcdkeys is the etcd key layout of DESIGN §3; every part builds its
// keys here so the layout lives in one place.
package etcdkeys

import "strconv"

// Root returns /ecskv/<cluster>/.
func Root(cluster string) string { return "/ecskv/" + cluster + "/" }

// Ring is the key of the published ring metadata.
func Ring(cluster string) string { return Root(cluster) + "ring" }

// ServersPrefix prefixes the lease-bound membership keys.
func ServersPrefix(cluster string) string { return Root(cluster) + "servers/" }

// Server is server id's membership key.
func Server(cluster, id string) string { return ServersPrefix(cluster) + id }

// Ready is where a caught-up learner asks to join partition p's chain.
func Ready(cluster, id string, p int) string {
	return Root(cluster) + "ready/" + id + "/" + strconv.Itoa(p)
}

// SyncedPrefix prefixes every member's synced/<id>/<partition> key.
func SyncedPrefix(cluster string) string { return Root(cluster) + "synced/" }

// Synced is where a promoted member of partition p reports the chain
// version at which it holds everything its predecessor had committed, so
// the ECS clears the member's unsynced mark.
func Synced(cluster, id string, p int) string {
	return SyncedPrefix(cluster) + id + "/" + strconv.Itoa(p)
}

// LeaderPrefix is the election prefix of the ECS candidates.
func LeaderPrefix(cluster string) string { return Root(cluster) + "ecs/leader" }

// Stop is written by `ecs stop`; the running ECS watches it.
func Stop(cluster string) string { return Root(cluster) + "ecs/stop" }

// Users prefixes the user records.
func Users(cluster string) string { return Root(cluster) + "users/" }

// User is the record of user name.
func User(cluster, name string) string { return Users(cluster) + name }

// Auth holds the cluster's token key and token lifetime (auth.Config);
// only cluster members may read it.
func Auth(cluster string) string { return Root(cluster) + "auth" }

// Tombstones prefixes the namespaces of removed users. `ecs user remove`
// writes one in the transaction that deletes the user's record; every
// kvserver deletes, through the chain, the keys of those namespaces in the
// partitions it heads (auth.Removal).
func Tombstones(cluster string) string { return Root(cluster) + "tombstones/" }

// Tombstone is the tombstone of namespace ns.
func Tombstone(cluster, ns string) string { return Tombstones(cluster) + ns }

// KeptUsers prefixes the users removed with `ecs user remove --keep-data`:
// their keys stay, and the next user of the name gets their id back.
func KeptUsers(cluster string) string { return Root(cluster) + "kept/" }

// KeptUser is the kept record of user name (auth.Removal).
func KeptUser(cluster, name string) string { return KeptUsers(cluster) + name }
