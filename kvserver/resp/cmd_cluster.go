package resp

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// lastSlot is the last of Redis Cluster's 16384 hash slots.
const lastSlot = 16383

// clusterCommand is CLUSTER. Every server forwards any key to its chain,
// so each one presents itself as the only shard, owning every slot: a
// cluster client sends everything to the server it was pointed at and is
// never redirected (no MOVED or ASK).
func clusterCommand() *command {
	return container("cluster", flagsConn,
		plainCmd("slots", 2, flagsConn, cmdClusterSlots),
		plainCmd("shards", 2, flagsConn, cmdClusterShards),
		plainCmd("nodes", 2, flagsConn, cmdClusterNodes),
		plainCmd("info", 2, flagsConn, cmdClusterInfo),
		plainCmd("myid", 2, flagsConn, cmdClusterMyID),
	)
}

// nodeID is the 40-hex-digit node id Redis Cluster uses, derived from the
// server's id so it is stable across restarts.
func (s *Server) nodeID() string {
	h := sha1.Sum([]byte(s.cfg.ServerID))
	return hex.EncodeToString(h[:])
}

// endpoint is the host and port the client reached this server at.
func (s *session) endpoint() (string, int) {
	host, port, err := net.SplitHostPort(s.local)
	if err != nil {
		return s.local, 0
	}
	p, _ := strconv.Atoi(port)
	return host, p
}

func cmdClusterSlots(_ context.Context, s *session, _ [][]byte) string {
	host, port := s.endpoint()
	w := &s.out
	w.array(1)
	w.array(3)
	w.int(0)
	w.int(lastSlot)
	w.array(4)
	w.bulkString(host)
	w.int(int64(port))
	w.bulkString(s.srv.nodeID())
	w.mapOf(0)
	return resultOK
}

func cmdClusterShards(_ context.Context, s *session, _ [][]byte) string {
	host, port := s.endpoint()
	w := &s.out
	w.array(1)
	w.mapOf(2)
	w.bulkString("slots")
	w.array(2)
	w.int(0)
	w.int(lastSlot)
	w.bulkString("nodes")
	w.array(1)
	w.mapOf(7)
	for _, kv := range [][2]string{{"id", s.srv.nodeID()}, {"port", ""}, {"ip", host}, {"endpoint", host},
		{"role", "master"}, {"replication-offset", ""}, {"health", "online"}} {
		w.bulkString(kv[0])
		switch kv[0] {
		case "port":
			w.int(int64(port))
		case "replication-offset":
			w.int(0)
		default:
			w.bulkString(kv[1])
		}
	}
	return resultOK
}

func cmdClusterNodes(_ context.Context, s *session, _ [][]byte) string {
	host, port := s.endpoint()
	s.out.verbatim(fmt.Sprintf("%s %s:%d@%d myself,master - 0 0 1 connected 0-%d\n",
		s.srv.nodeID(), host, port, port, lastSlot))
	return resultOK
}

func cmdClusterInfo(_ context.Context, s *session, _ [][]byte) string {
	s.out.verbatim(lines(
		"cluster_state:ok", "cluster_slots_assigned:16384", "cluster_slots_ok:16384",
		"cluster_slots_pfail:0", "cluster_slots_fail:0", "cluster_known_nodes:1", "cluster_size:1",
		"cluster_current_epoch:1", "cluster_my_epoch:1"))
	return resultOK
}

func cmdClusterMyID(_ context.Context, s *session, _ [][]byte) string {
	s.out.bulkString(s.srv.nodeID())
	return resultOK
}

func lines(ls ...string) string {
	var b strings.Builder
	for _, l := range ls {
		b.WriteString(l + "\r\n")
	}
	return b.String()
}

// cmdInfo is INFO [section ...]: the sections clients read (server,
// clients, replication, cluster, keyspace), in Redis's format.
func cmdInfo(_ context.Context, s *session, args [][]byte) string {
	want := map[string]bool{}
	for _, a := range args[1:] {
		want[strings.ToLower(string(a))] = true
	}
	all := len(want) == 0 || want["all"] || want["default"] || want["everything"]
	var b strings.Builder
	for _, sec := range s.infoSections() {
		if all || want[strings.ToLower(sec.name)] {
			if b.Len() > 0 {
				b.WriteString("\r\n")
			}
			b.WriteString("# " + sec.name + "\r\n" + lines(sec.lines...))
		}
	}
	s.out.verbatim(b.String())
	return resultOK
}

type infoSection struct {
	name  string
	lines []string
}

func (s *session) infoSections() []infoSection {
	_, port := s.endpoint()
	up := time.Since(s.srv.started)
	return []infoSection{
		{"Server", []string{
			"redis_version:" + RedisVersion, "redis_mode:cluster", "ecskv_server_id:" + s.srv.cfg.ServerID,
			"os:" + runtime.GOOS, "arch_bits:" + strconv.Itoa(strconv.IntSize),
			"process_id:" + strconv.Itoa(os.Getpid()), "run_id:" + s.srv.nodeID(), "tcp_port:" + strconv.Itoa(port),
			"uptime_in_seconds:" + strconv.Itoa(int(up.Seconds())), "uptime_in_days:" + strconv.Itoa(int(up.Hours()/24)),
		}},
		{"Clients", []string{"connected_clients:" + strconv.Itoa(s.srv.connCount())}},
		{"Replication", []string{"role:master", "connected_slaves:0"}},
		{"Cluster", []string{"cluster_enabled:1"}},
		{"Keyspace", nil},
	}
}
