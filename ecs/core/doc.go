// Package core holds the ECS's chain rules (DESIGN §4-5): how a partition's
// chain may change on failover, promotion and planned moves so that the ECS
// never publishes a chain that may lack acknowledged writes.
//
// A member is synced when it is known to hold every write the partition
// acknowledged: every member of a first layout is, and a learner promoted to
// tail is not until it reports that it caught up with its predecessor. The
// rules keep, for every chain:
//
//   - at least one synced member, and a synced head: an unsynced member is
//     never head or sole member, so it never decides what was committed;
//   - an unsynced member behind the predecessor it syncs from: when that
//     predecessor leaves, no remaining member keeps the log entries it
//     lacks, so it goes back to being the learner (or leaves);
//   - no other step while a member is unsynced (the partition is frozen):
//     no new learner, no member removed by the planner.
//
// Everything here is a pure function of its arguments: no I/O, clock or
// goroutines. The controller and the simulator call the same functions, and
// the tests enumerate every small chain.
package core
