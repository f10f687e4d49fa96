//go:build simcanary_reportonce

package chainsm

// canaryReportOnce puts back the old synced report: a promoted member owed
// it at one chain version only, so a failover published before the ECS
// consumed it (the report lost in a crash, or discounted as an earlier
// incarnation's) left the member marked unsynced and its partition frozen
// for good.
const canaryReportOnce = true
