package framework

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// socketOwner returns which of pids holds the other end of a loopback
// connection accepted by this process, or 0. It finds the socket's inode in
// /proc/net/tcp{,6} by its ports, then looks for it among the pids' open
// files. All the cluster's processes run on this machine, so a proxy can
// tell which node dialled it without the node saying so.
func socketOwner(c net.Conn, pids []int) int {
	local, ok1 := c.LocalAddr().(*net.TCPAddr)
	remote, ok2 := c.RemoteAddr().(*net.TCPAddr)
	if !ok1 || !ok2 {
		return 0
	}
	// The dialler's socket: its local port is our remote port and its
	// remote port is our listening port.
	inode := ""
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		if inode = findInode(f, remote.Port, local.Port); inode != "" {
			break
		}
	}
	if inode == "" {
		return 0
	}
	want := "socket:[" + inode + "]"
	for _, pid := range pids {
		dir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && l == want {
				return pid
			}
		}
	}
	return 0
}

// findInode returns the inode of the socket in a /proc/net/tcp table whose
// local port is lport and remote port rport.
func findInode(table string, lport, rport int) string {
	f, err := os.Open(table)
	if err != nil {
		return ""
	}
	defer f.Close()
	lsuf, rsuf := fmt.Sprintf(":%04X", lport), fmt.Sprintf(":%04X", rport)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		fs := strings.Fields(sc.Text())
		if len(fs) < 10 {
			continue
		}
		if strings.HasSuffix(fs[1], lsuf) && strings.HasSuffix(fs[2], rsuf) {
			return fs[9]
		}
	}
	return ""
}
