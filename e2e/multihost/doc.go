// Package multihost runs ecskv's compose layout (config/deploy/compose.yaml) for
// real: a 3-member etcd, two ECSes and five kvservers, each in a container of
// its own with its own address on a private Docker network, from the image
// of `make image` (ecskv:dev). Its test carries the `multihost` build tag and
// runs through `make multihost`:
//
//	make image
//	go test -tags multihost -count=1 -v ./e2e/multihost -bin-dir ../../bin/image/bin
//
// TestMultihost brings the layout up (P=256 partitions, so each fault
// moves fewer replicas) under the fixed compose project
// ecskv-multihost (a leftover of an earlier run is taken down first, so it
// may run any number of times), on the first free /24 from 172.28.5.0, and
// waits for five active servers and a standby ECS. It loads keys with kvbench
// from a client container, then runs a put/get/delete workload from this
// host through the kvclient library while it kills a kvserver's container
// (docker kill), cuts one from the network (docker network disconnect),
// pauses one (docker pause) and kills the leading ECS's container, each
// healed (start, connect, unpause) and followed by recovery. It ends with
// `ecs check` clean, every acknowledged write and every loaded key readable
// and the history linearizable, and takes the layout down, volumes and all,
// also when it fails. Without Docker (or Compose) it skips.
//
// The admin commands run on this host from the static binaries of -bin-dir
// (bin/image/bin, the ones in the image); the containers' addresses are
// routable from the Docker host.
//
// Environment: ECSKV_IMAGE names the image (default ecskv:dev).
package multihost
