// Package backup writes and reads backups of an ecskv cluster (`ecs
// backup`, `ecs restore`).
//
//   - format.go: the partition file format (FileWriter, ReadFile);
//   - manifest.go: manifest.json, what a backup holds and the checksum of
//     each file;
//   - verify.go: Verify re-reads every file against the manifest;
//   - backup.go: Backup streams every partition from its tail (the Admin
//     service's Backup call) into one file each;
//   - restore.go: Restore writes every record into a cluster through the
//     heads of the partitions the target's ring routes it to (the Admin
//     service's Restore call), so the target may have another P or
//     another number of servers;
//   - users.go: the user records in etcd that give namespaces their names.
//
// Guarantee: each partition's file is that partition exactly as it stood
// at one seq, committed on every member of its chain (the tail's commit
// point when its snapshot was taken); the partitions are taken one after
// another while writes go on, so a backup is not one cluster-wide instant.
//
// Concurrency: Backup and Restore run a bounded number of partitions or
// files in parallel and join those goroutines before they return; the
// other functions run in the caller's goroutine.
package backup
