package config

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"net"
	"os"
	"regexp"
	"strconv"
	"time"

	"github.com/ecskv/ecskv/common/tlsutil"
)

// ErrInvalid wraps every configuration error.
var ErrInvalid = errors.New("config: invalid")

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// Hard upper bounds: keys and values travel in one gRPC message.
const (
	maxKeyLimit   = 64 << 10
	maxValueLimit = 64 << 20
	maxPartitions = 32768
	// maxInitialServers bounds --initial-servers: far above any cluster a
	// ring of MaxPartitions serves, and a typo of a count fails loudly.
	maxInitialServers = 10000
)

// problems collects field errors so one run reports them all.
type problems []error

func (p *problems) addf(field, format string, args ...any) {
	*p = append(*p, fmt.Errorf("%w: %s: %s", ErrInvalid, field, fmt.Sprintf(format, args...)))
}

func (p problems) err() error { return errors.Join(p...) }

// Validate reports every invalid field of an ECS configuration.
func (c ECS) Validate() error {
	var p problems
	checkName(&p, "cluster", c.Cluster)
	if c.DataDir == "" {
		p.addf("data-dir", "must not be empty")
	}
	if c.Servers < 0 || c.Servers > 1000 {
		p.addf("servers", "must be in 0..1000, got %d", c.Servers)
	}
	if net.ParseIP(c.Host) == nil {
		p.addf("host", "must be an IP address, got %q", c.Host)
	}
	if c.BasePort < 1 || c.BasePort+1000+c.Servers-1 > 65535 { // last metrics port
		p.addf("base-port", "servers need ports %d..%d (and metrics +1000), outside 1..65535", c.BasePort, c.BasePort+c.Servers-1)
	}
	if c.DHTBasePort != 0 && (c.DHTBasePort < 1 || c.DHTBasePort+c.Servers-1 > 65535) {
		p.addf("dht-base-port", "servers need ports %d..%d, outside 1..65535", c.DHTBasePort, c.DHTBasePort+c.Servers-1)
	}
	if c.DHTBasePort != 0 && (c.Secure || c.TLS.Enabled()) {
		p.addf("dht-base-port", "the DHT API is plaintext TCP without authentication: not on a cluster with TLS (start such a server by hand with --dht-listen and --dht-allow-insecure)")
	}
	if c.RESPBasePort != 0 && (c.RESPBasePort < 1 || c.RESPBasePort+c.Servers-1 > 65535) {
		p.addf("resp-base-port", "servers need ports %d..%d, outside 1..65535", c.RESPBasePort, c.RESPBasePort+c.Servers-1)
	}
	if c.RESPBasePort != 0 && (c.Secure || c.TLS.Enabled()) {
		p.addf("resp-base-port", "the Redis protocol front door is plaintext TCP (AUTH sends passwords in the clear): not on a cluster with TLS (start such a server by hand with --resp-listen and --resp-allow-insecure)")
	}
	if len(c.EtcdEndpoints) == 0 && (c.EtcdPort < 1 || c.EtcdPort > 65534) {
		p.addf("etcd-port", "must be in 1..65534 (peer port is +1), got %d", c.EtcdPort)
	}
	checkEndpoints(&p, "etcd-endpoints", c.EtcdEndpoints, false)
	if c.InitialServers < 0 || c.InitialServers > maxInitialServers {
		p.addf("initial-servers", "must be in 0..%d, got %d", maxInitialServers, c.InitialServers)
	}
	if c.Replicas < 1 || c.Replicas > 7 {
		p.addf("replicas", "must be in 1..7, got %d", c.Replicas)
	}
	if c.Partitions < 1 || c.Partitions > maxPartitions || bits.OnesCount(uint(c.Partitions)) != 1 {
		p.addf("partitions", "must be a power of two in 1..%d, got %d", maxPartitions, c.Partitions)
	}
	checkAddr(&p, "http", c.HTTP, true)
	if c.MaxKeyBytes < 1 || c.MaxKeyBytes > maxKeyLimit {
		p.addf("max-key-bytes", "must be in 1..%d, got %d", maxKeyLimit, c.MaxKeyBytes)
	}
	if c.MaxValueBytes < 0 || c.MaxValueBytes > maxValueLimit {
		p.addf("max-value-bytes", "must be in 0..%d, got %d", maxValueLimit, c.MaxValueBytes)
	}
	checkMin(&p, "lease-ttl", c.LeaseTTL, time.Second)
	checkMin(&p, "ready-timeout", c.ReadyTimeout, time.Second)
	checkLevel(&p, c.LogLevel)
	checkMin(&p, "probe-interval", c.ProbeInterval, 10*time.Millisecond)
	checkMin(&p, "probe-timeout", c.ProbeTimeout, time.Millisecond)
	if c.ProbeFailures < 1 || c.ProbeFailures > 100 {
		p.addf("probe-failures", "must be in 1..100, got %d", c.ProbeFailures)
	}
	if c.MaxMoves < 1 || c.MaxMoves > 10000 {
		p.addf("max-moves", "must be in 1..10000, got %d", c.MaxMoves)
	}
	// A server cut off from etcd accepts a removed user's tokens until they
	// expire, so the lifetime bounds revocation: keep it short.
	if c.TokenTTL < time.Second || c.TokenTTL > 24*time.Hour {
		p.addf("token-ttl", "must be in 1s..24h, got %v", c.TokenTTL)
	}
	// --secure creates missing certificates in the directory.
	checkTLS(&p, c.TLS, tlsutil.ECSName, !c.Secure)
	return p.err()
}

// Validate reports every invalid field of a kvserver configuration.
func (c KVServer) Validate() error {
	var p problems
	checkName(&p, "id", c.ID)
	checkAddr(&p, "listen", c.Listen, false)
	if c.Advertise != "" {
		checkAddr(&p, "advertise", c.Advertise, false)
	}
	checkAddr(&p, "metrics", c.Metrics, true)
	if c.DataDir == "" {
		p.addf("data-dir", "must not be empty")
	}
	checkName(&p, "cluster", c.Cluster)
	checkCoords(&p, c.Coords)
	checkEndpoints(&p, "etcd-endpoints", c.EtcdEndpoints, true)
	checkMin(&p, "lease-ttl", c.LeaseTTL, time.Second)
	if c.CacheEntries < 0 {
		p.addf("cache-entries", "must be >= 0, got %d", c.CacheEntries)
	}
	if c.CacheBytes < 0 {
		p.addf("cache-bytes", "must be >= 0, got %d", c.CacheBytes)
	}
	if c.SyncDelay < 0 || c.SyncDelay > maxSyncDelay {
		p.addf("sync-delay", "must be between 0 (never) and %v, got %v", maxSyncDelay, c.SyncDelay)
	}
	if c.TransferRate < 0 {
		p.addf("transfer-rate", "must be >= 0 bytes/s, got %d", c.TransferRate)
	}
	if c.MaxConnections < 0 {
		p.addf("max-connections", "must be >= 0 (0 = no bound), got %d", c.MaxConnections)
	}
	if c.MaxMessageBytes < 1<<20 {
		p.addf("max-message-bytes", "must be at least 1 MiB, got %d", c.MaxMessageBytes)
	}
	if c.MaxStreams < 1 {
		p.addf("max-streams", "must be at least 1, got %d", c.MaxStreams)
	}
	checkConnBounds(&p, c)
	checkBatchBounds(&p, c)
	checkScanBounds(&p, c)
	checkDHT(&p, c)
	checkRESP(&p, c)
	if c.RateLimit < 0 {
		p.addf("rate-limit", "must be >= 0 requests/s (0 = no limit), got %v", c.RateLimit)
	}
	if c.RateBurst < 1 {
		p.addf("rate-burst", "must be at least 1, got %d", c.RateBurst)
	}
	checkLevel(&p, c.LogLevel)
	checkTLS(&p, c.TLS, c.ID, true)
	return p.err()
}

// maxSyncDelay bounds sync-delay: a busy server's writes wait for it on
// top of their fsync, and past a few fsyncs' time the wait costs more
// latency than the fsyncs it saves.
const maxSyncDelay = 10 * time.Millisecond

// checkConnBounds checks the bounds on connections that have not made a
// call yet, and on idle ones.
func checkConnBounds(p *problems, c KVServer) {
	if c.MaxPendingConnections < 0 {
		p.addf("max-pending-connections", "must be >= 0 (0 = no bound), got %d", c.MaxPendingConnections)
	}
	checkMin(p, "handshake-timeout", c.HandshakeTimeout, 10*time.Millisecond)
	if c.FirstRequestTimeout < c.HandshakeTimeout {
		p.addf("first-request-timeout", "must be at least handshake-timeout (%v), got %v", c.HandshakeTimeout, c.FirstRequestTimeout)
	}
	if c.IdleTimeout != 0 && c.IdleTimeout < time.Second {
		p.addf("idle-timeout", "must be 0 (never) or at least 1s, got %v", c.IdleTimeout)
	}
}

// minBatchQueuedBytes is the least max-batch-queued-bytes: room for a
// few answers.
const minBatchQueuedBytes = 64 << 10

// checkBatchBounds checks the bounds of one Batch stream.
func checkBatchBounds(p *problems, c KVServer) {
	if c.MaxForwards < 1 {
		p.addf("max-forwards", "must be at least 1, got %d", c.MaxForwards)
	}
	if c.MaxBatchInflight < 1 {
		p.addf("max-batch-inflight", "must be at least 1, got %d", c.MaxBatchInflight)
	}
	if c.MaxBatchQueuedBytes < minBatchQueuedBytes {
		p.addf("max-batch-queued-bytes", "must be at least %d (64 KiB), got %d", minBatchQueuedBytes, c.MaxBatchQueuedBytes)
	}
	checkMin(p, "batch-stall-timeout", c.BatchStallTimeout, 10*time.Millisecond)
}

// checkScanBounds checks the bounds of a Scan page: at least one key and
// 1 KiB, and room in a message for a page plus its largest key.
func checkScanBounds(p *problems, c KVServer) {
	if c.ScanMaxPageKeys < 1 {
		p.addf("scan-max-page-keys", "must be at least 1, got %d", c.ScanMaxPageKeys)
	}
	if c.ScanMaxPageBytes < 1<<10 || c.ScanMaxPageBytes > c.MaxMessageBytes/2 {
		p.addf("scan-max-page-bytes", "must be between 1024 and half of max-message-bytes (%d), got %d", c.MaxMessageBytes/2, c.ScanMaxPageBytes)
	}
}

// checkDHT checks the DHT API's address and bounds, and refuses it on a
// server with TLS unless allowed: the protocol is plaintext and
// unauthenticated.
func checkDHT(p *problems, c KVServer) {
	if c.DHTListen == "" {
		return
	}
	checkAddr(p, "dht-listen", c.DHTListen, false)
	if c.TLS.Enabled() && !c.DHTAllowInsecure {
		p.addf("dht-listen", "the DHT API is plaintext TCP without authentication; on a server with TLS it also needs dht-allow-insecure")
	}
	if c.DHTMaxConnections < 0 {
		p.addf("dht-max-connections", "must be >= 0 (0 = no bound), got %d", c.DHTMaxConnections)
	}
	if c.DHTMaxInflight < 1 {
		p.addf("dht-max-inflight", "must be at least 1, got %d", c.DHTMaxInflight)
	}
	if c.DHTIdleTimeout != 0 && c.DHTIdleTimeout < time.Second {
		p.addf("dht-idle-timeout", "must be 0 (never) or at least 1s, got %v", c.DHTIdleTimeout)
	}
}

// checkRESP checks the Redis protocol front door's address and bounds,
// and refuses it on a server with TLS unless allowed: the protocol is
// plaintext, passwords included.
func checkRESP(p *problems, c KVServer) {
	if c.RESPListen == "" {
		return
	}
	checkAddr(p, "resp-listen", c.RESPListen, false)
	if c.TLS.Enabled() && !c.RESPAllowInsecure {
		p.addf("resp-listen", "the Redis protocol front door is plaintext TCP (AUTH sends passwords in the clear); on a server with TLS it also needs resp-allow-insecure")
	}
	if c.RESPMaxConnections < 0 {
		p.addf("resp-max-connections", "must be >= 0 (0 = no bound), got %d", c.RESPMaxConnections)
	}
	if c.RESPIdleTimeout != 0 && c.RESPIdleTimeout < time.Second {
		p.addf("resp-idle-timeout", "must be 0 (never) or at least 1s, got %v", c.RESPIdleTimeout)
	}
}

// Validate reports every invalid field of a client configuration.
func (c Client) Validate() error {
	var p problems
	for _, s := range c.Servers {
		checkAddr(&p, "server", s, false)
	}
	if len(c.Servers) == 0 {
		checkEndpoints(&p, "etcd-endpoints", c.EtcdEndpoints, true)
	}
	checkName(&p, "cluster", c.Cluster)
	checkMin(&p, "dial-timeout", c.DialTimeout, time.Millisecond)
	checkMin(&p, "request-timeout", c.RequestTimeout, time.Millisecond)
	checkLevel(&p, c.LogLevel)
	if c.User != "" {
		checkName(&p, "user", c.User)
	}
	if c.PasswordFile != "" {
		if _, err := os.Stat(c.PasswordFile); err != nil {
			p.addf("password-file", "cannot read %q: %v", c.PasswordFile, err)
		}
	}
	if c.ReadMode != ReadTail && c.ReadMode != ReadNearest {
		p.addf("read-mode", "must be %s or %s, got %q", ReadTail, ReadNearest, c.ReadMode)
	}
	checkCoords(&p, c.Coords)
	checkTLS(&p, c.TLS, tlsutil.ClientName, true)
	return p.err()
}

// maxCoords bounds the dimensions of coords: a few are plenty to place
// sites on a map or in a network-distance space.
const maxCoords = 8

func checkCoords(p *problems, cs []float64) {
	if len(cs) > maxCoords {
		p.addf("coords", "must have at most %d numbers, got %d", maxCoords, len(cs))
	}
	for _, c := range cs {
		if math.IsNaN(c) || math.IsInf(c, 0) {
			p.addf("coords", "must be finite numbers, got %v", c)
			break
		}
	}
}

// Validate reports every invalid field of an admin command's configuration.
func (c Admin) Validate() error {
	var p problems
	checkEndpoints(&p, "etcd-endpoints", c.EtcdEndpoints, true)
	checkName(&p, "cluster", c.Cluster)
	checkTLS(&p, c.TLS, tlsutil.ECSName, true)
	return p.err()
}

// CheckServerID reports whether id is a valid server id (or cluster name).
func CheckServerID(id string) error {
	if !nameRE.MatchString(id) {
		return fmt.Errorf("config: server id must be 1-63 letters, digits, '.', '_' or '-', got %q", id)
	}
	return nil
}

func checkName(p *problems, field, v string) {
	if !nameRE.MatchString(v) {
		p.addf(field, "must be 1-63 letters, digits, '.', '_' or '-', got %q", v)
	}
}

// checkAddr wants host:port with a numeric port; optional allows "".
func checkAddr(p *problems, field, v string, optional bool) {
	if v == "" && optional {
		return
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		p.addf(field, "must be host:port, got %q", v)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		p.addf(field, "port must be 0..65535, got %q", port)
	}
	_ = host
}

func checkEndpoints(p *problems, field string, eps []string, required bool) {
	if required && len(eps) == 0 {
		p.addf(field, "must list at least one etcd endpoint")
	}
	for _, e := range eps {
		checkAddr(p, field, trimScheme(e), false)
	}
}

func trimScheme(e string) string {
	for _, s := range []string{"http://", "https://"} {
		if len(e) > len(s) && e[:len(s)] == s {
			return e[len(s):]
		}
	}
	return e
}

func checkMin(p *problems, field string, d, lower time.Duration) {
	if d < lower {
		p.addf(field, "must be at least %v, got %v", lower, d)
	}
}

func checkLevel(p *problems, lvl string) {
	switch lvl {
	case "debug", "info", "warn", "error":
	default:
		p.addf("log-level", "must be debug, info, warn or error, got %q", lvl)
	}
}
