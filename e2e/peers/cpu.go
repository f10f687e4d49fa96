package main

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// clkTck is USER_HZ, the unit of the times in /proc/<pid>/stat: 100 on
// every Linux architecture (what `getconf CLK_TCK` prints).
const clkTck = 100

// procStat is what treeUsage needs of one process's /proc/<pid>/stat.
type procStat struct {
	ppid  int
	ticks int64 // utime+stime (all its threads) + cutime+cstime (children it has reaped)
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	// "pid (comm) state ppid ...": comm may hold spaces and parentheses,
	// so the fields start after the last ')'; f[0] is field 3 (state).
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	var st procStat
	st.ppid, err = strconv.Atoi(f[1])
	for _, i := range []int{11, 12, 13, 14} { // utime, stime, cutime, cstime
		n, perr := strconv.ParseInt(f[i], 10, 64)
		if err == nil {
			err = perr
		}
		st.ticks += n
	}
	return st, err
}

// usage is what a process tree has used so far.
type usage struct {
	cpu float64 // seconds, user+system
	// syscalls are the read and write system calls (syscr + syscw of
	// /proc/<pid>/io) of the processes alive now: every message sent or
	// received and every WAL write and fsync costs at least one.
	syscalls int64
	// switches are the context switches (voluntary and not) of every
	// thread of the processes alive now: each time a thread sleeps for a
	// message, a lock or a sync, or is preempted.
	switches int64
}

func (u usage) sub(v usage) usage {
	return usage{cpu: u.cpu - v.cpu, syscalls: u.syscalls - v.syscalls, switches: u.switches - v.switches}
}

// treeUsage returns what the processes roots and all their descendants (an
// ecs's kvservers, a fork of redis-server) have used so far. A descendant
// that exits between two calls still counts in cpu: its parent's cutime
// and cstime take its times when it is reaped.
func treeUsage(roots []int) (usage, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return usage{}, err
	}
	stats := map[int]procStat{}
	kids := map[int][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readStat(pid)
		if err != nil {
			continue // exited meanwhile
		}
		stats[pid] = st
		kids[st.ppid] = append(kids[st.ppid], pid)
	}
	var u usage
	var ticks int64
	todo := append([]int(nil), roots...)
	for len(todo) > 0 {
		pid := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		st, ok := stats[pid]
		if !ok {
			return usage{}, fmt.Errorf("server process %d is gone", pid)
		}
		ticks += st.ticks
		u.syscalls += readSyscalls(pid)
		u.switches += readSwitches(pid)
		todo = append(todo, kids[pid]...)
	}
	u.cpu = float64(ticks) / clkTck
	return u, nil
}

// readSyscalls is syscr + syscw of /proc/<pid>/io (0 if unreadable).
func readSyscalls(pid int) int64 {
	return sumFields("/proc/"+strconv.Itoa(pid)+"/io", "syscr", "syscw")
}

// readSwitches sums the context switches of every thread of pid: the
// process's own status counts only its main thread.
func readSwitches(pid int) int64 {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var n int64
	for _, t := range tasks {
		n += sumFields(dir+"/"+t.Name()+"/status", "voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")
	}
	return n
}

// sumFields adds up the "key: number" lines of file with the given keys
// (0 if unreadable: the process or thread may be gone).
func sumFields(file string, keys ...string) int64 {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	var n int64
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && slices.Contains(keys, k) {
			c, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			n += c
		}
	}
	return n
}
