package framework

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ProcInfo is what /proc tells about a process.
type ProcInfo struct {
	PID, PPID, PGID int
	State           byte   // R, S, D, Z, T, ...
	Cmdline         string // argv joined by spaces
}

// ReadProc reads /proc/<pid>; ok is false when there is no such process.
func ReadProc(pid int) (ProcInfo, bool) {
	dir := filepath.Join("/proc", strconv.Itoa(pid))
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return ProcInfo{}, false
	}
	// pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return ProcInfo{}, false
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 3 || len(f[0]) != 1 {
		return ProcInfo{}, false
	}
	info := ProcInfo{PID: pid, State: f[0][0]}
	info.PPID, _ = strconv.Atoi(f[1])
	info.PGID, _ = strconv.Atoi(f[2])
	if cmd, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil {
		info.Cmdline = strings.TrimSpace(string(bytes.ReplaceAll(cmd, []byte{0}, []byte{' '})))
	}
	return info, true
}

// Alive reports whether pid is a live process (a zombie is not).
func Alive(pid int) bool {
	info, ok := ReadProc(pid)
	return ok && info.State != 'Z' && info.State != 'X'
}

// Children returns the live processes whose parent is ppid.
func Children(ppid int) []ProcInfo {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []ProcInfo
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if info, ok := ReadProc(pid); ok && info.PPID == ppid && info.State != 'Z' {
			out = append(out, info)
		}
	}
	return out
}

// killIfKVServer sends SIGKILL to pid when it is still a live kvserver (the
// command-line check guards against a recycled pid). It reports whether it
// sent the signal.
func killIfKVServer(pid int) bool {
	info, ok := ReadProc(pid)
	if !ok || info.State == 'Z' || !strings.Contains(info.Cmdline, KVServerBin) {
		return false
	}
	err := syscall.Kill(pid, syscall.SIGKILL)
	return err == nil || !errors.Is(err, syscall.ESRCH)
}

// ProcArgs returns the argv of a live process, exactly as it was started
// (/proc/<pid>/cmdline split on NUL); ok is false when there is no such
// process or it is a zombie.
func ProcArgs(pid int) (argv []string, ok bool) {
	info, ok := ReadProc(pid)
	if !ok || info.State == 'Z' {
		return nil, false
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil || len(b) == 0 {
		return nil, false
	}
	for _, a := range bytes.Split(bytes.TrimSuffix(b, []byte{0}), []byte{0}) {
		argv = append(argv, string(a))
	}
	return argv, true
}

// Exited reports whether every thread of pid has exited (they are zombies
// or gone). A process killed while one of its threads sleeps uninterruptibly
// (fsync on a busy disk) shows its main thread as a zombie while that
// thread still holds its files and sockets; Alive(pid) is then already false
// but Exited(pid) is not. states lists the threads still running, as
// "tid:state".
func Exited(pid int) (exited bool, states []string) {
	dir := filepath.Join("/proc", strconv.Itoa(pid), "task")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return true, nil
	}
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(dir, e.Name(), "stat"))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 || i+2 >= len(stat) {
			continue
		}
		if s := stat[i+2]; s != 'Z' && s != 'X' {
			states = append(states, strconv.Itoa(tid)+":"+string(s))
		}
	}
	return len(states) == 0, states
}

// RSS returns the resident set size of pid in bytes (VmRSS of
// /proc/<pid>/status); ok is false when there is no such process.
func RSS(pid int) (bytes int64, ok bool) {
	status, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, found := strings.CutPrefix(line, "VmRSS:"); found {
			f := strings.Fields(rest) // "1234 kB"
			if len(f) != 2 || f[1] != "kB" {
				return 0, false
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}
