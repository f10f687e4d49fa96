//go:build simcanary_twoheads

package chainsm

// canaryTwoHeads puts back the old sole member (issue 12, bug 1, with the
// ECS side in e2e/sim): a chain of one served reads and answered writes with
// no lease and no fresh etcd contact, so a sole member cut off from etcd
// went on serving after the ECS had handed its partition to another.
const canaryTwoHeads = true
