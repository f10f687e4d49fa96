package config

import "time"

// ECS configures the External Configuration Service (`ecs start`).
type ECS struct {
	Cluster string `mapstructure:"cluster"`  // etcd key prefix /ecskv/<cluster>/; default "default"
	DataDir string `mapstructure:"data-dir"` // embedded etcd and launched servers' data; default ./data
	// Servers is how many local kvservers `ecs start` launches (-n); 0 launches none.
	Servers int `mapstructure:"servers"`
	// InitialServers is how many servers must be active before the first
	// ring is laid out, so that a cluster whose servers start on their own
	// hosts one by one is laid out over all of them (runs of neighbours)
	// instead of over the first R and then rebalanced. 0 (the default)
	// waits for the servers this ECS launches, or R when it launches none.
	InitialServers int    `mapstructure:"initial-servers"`
	Host           string `mapstructure:"host"`      // address launched servers and embedded etcd bind; default 127.0.0.1
	BasePort       int    `mapstructure:"base-port"` // server i listens on base-port+i-1; metrics on base-port+1000+i-1
	// EtcdEndpoints selects an external etcd; empty embeds one.
	EtcdEndpoints []string      `mapstructure:"etcd-endpoints"`
	EtcdPort      int           `mapstructure:"etcd-port"`       // embedded etcd client port (peer port is +1); default 2379
	Replicas      int           `mapstructure:"replicas"`        // R; default 1 until replication lands
	Partitions    int           `mapstructure:"partitions"`      // P, power of two; fixed at cluster creation; default 1024
	HTTP          string        `mapstructure:"http"`            // status page and /metrics; default 127.0.0.1:9400
	KVServerBin   string        `mapstructure:"kvserver-bin"`    // kvserver binary; default: beside the ecs binary
	MaxKeyBytes   int           `mapstructure:"max-key-bytes"`   // default 1024
	MaxValueBytes int           `mapstructure:"max-value-bytes"` // default 1 MiB
	LeaseTTL      time.Duration `mapstructure:"lease-ttl"`       // kvserver membership lease; default 3s
	ReadyTimeout  time.Duration `mapstructure:"ready-timeout"`   // how long start waits for servers; default 60s
	LogLevel      string        `mapstructure:"log-level"`       // debug|info|warn|error; default warn
	// ProbeInterval is how often the leader probes each server's gRPC health
	// (DESIGN §5); default 150ms.
	ProbeInterval time.Duration `mapstructure:"probe-interval"`
	// ProbeTimeout bounds one health probe; default 200ms.
	ProbeTimeout time.Duration `mapstructure:"probe-timeout"`
	// ProbeFailures is how many consecutive failed probes mark a server down
	// (and how many consecutive successes bring it back); default 3. Probes
	// that only time out also need a second without any answer, so a busy
	// server is not failed over.
	ProbeFailures int `mapstructure:"probe-failures"`
	// MaxMoves bounds the learners (partition copies) in flight cluster-wide
	// while re-replicating or rebalancing; default 8.
	MaxMoves int `mapstructure:"max-moves"`
	// Secure turns on TLS on every link and authentication. Certificates
	// come from CertsDir (default <data-dir>/certs), created there for a
	// local cluster when missing; default false.
	Secure bool `mapstructure:"secure"`
	// Auth turns on users and tokens (on with Secure); fixed at cluster
	// creation. Default false.
	Auth bool `mapstructure:"auth"`
	// TokenTTL is how long a login token lasts; default 10m.
	TokenTTL time.Duration `mapstructure:"token-ttl"`
	// DHTBasePort gives launched server i the VoidPhone DHT API on
	// dht-base-port+i-1 (kvserver --dht-listen); 0 (the default) is off.
	// Not on a cluster with TLS: the protocol is plaintext.
	DHTBasePort int `mapstructure:"dht-base-port"`
	// RESPBasePort gives launched server i the Redis protocol front door
	// on resp-base-port+i-1 (kvserver --resp-listen); 0 (the default) is
	// off. Not on a cluster with TLS: the protocol is plaintext.
	RESPBasePort int `mapstructure:"resp-base-port"`
	TLS          `mapstructure:",squash"`
}

// TLS names the certificate files of one binary (DESIGN §8). With none set
// every link is plaintext. CertsDir is a directory of `ecs certs init`; the
// single files override what it provides.
type TLS struct {
	CertsDir string `mapstructure:"certs-dir"` // ca.crt plus <name>.crt and <name>.key
	CACert   string `mapstructure:"cacert"`    // CA that signs every cluster certificate
	Cert     string `mapstructure:"cert"`      // this binary's certificate
	Key      string `mapstructure:"key"`       // its private key
	// EtcdCACert, EtcdCert and EtcdKey are for an external etcd with its own
	// CA; each defaults to the file above.
	EtcdCACert string `mapstructure:"etcd-cacert"`
	EtcdCert   string `mapstructure:"etcd-cert"`
	EtcdKey    string `mapstructure:"etcd-key"`
}

// Admin configures the admin commands (`ecs status`, `ecs user`, ...).
type Admin struct {
	EtcdEndpoints []string `mapstructure:"etcd-endpoints"` // default 127.0.0.1:2379
	Cluster       string   `mapstructure:"cluster"`        // default "default"
	TLS           `mapstructure:",squash"`
}

// KVServer configures one storage server.
type KVServer struct {
	ID        string `mapstructure:"id"`        // unique, stable across restarts
	Listen    string `mapstructure:"listen"`    // client and peer gRPC address
	Advertise string `mapstructure:"advertise"` // address others dial; default Listen
	Metrics   string `mapstructure:"metrics"`   // /metrics address; "" disables
	DataDir   string `mapstructure:"data-dir"`  // pebble directory
	Zone      string `mapstructure:"zone"`      // failure domain for placement
	// Coords place the server in a space of the operator's choosing (say
	// x,y in milliseconds of network distance); clients in no zone of a
	// chain read from the member nearest theirs. Default none.
	Coords        []float64     `mapstructure:"coords"`
	Cluster       string        `mapstructure:"cluster"`        // default "default"
	EtcdEndpoints []string      `mapstructure:"etcd-endpoints"` // default 127.0.0.1:2379
	LeaseTTL      time.Duration `mapstructure:"lease-ttl"`      // membership lease; default 3s
	Sync          bool          `mapstructure:"sync"`           // fsync every write batch; default true
	CacheEntries  int           `mapstructure:"cache-entries"`  // LRU entries; default 100000; 0 disables
	CacheBytes    int64         `mapstructure:"cache-bytes"`    // LRU byte budget; default 64 MiB
	// LeanLog writes a single put's log record without its value, which
	// the data record holds; false writes every record whole, so a version
	// from before lean records can open the data directory. Default true.
	LeanLog bool `mapstructure:"lean-log"`
	// SyncDelay holds a WAL sync back this long when the sync before it
	// covered the writes of more than one step (the server is busy), so
	// that the writes applied meanwhile share its fsync. An idle server's
	// lone writes are synced at once. Default 300µs, 0 = never.
	SyncDelay time.Duration `mapstructure:"sync-delay"`
	// RawWALSync issues the WAL's fdatasync and writes as raw system
	// calls that keep their Go processor, sparing the runtime's handoff of
	// it (two in five of a server's context switches per write fewer) and
	// its monitor's wake-ups. A garbage collection then waits for a sync
	// in progress. Default true.
	RawWALSync bool   `mapstructure:"raw-wal-sync"`
	LogLevel   string `mapstructure:"log-level"` // default warn
	// TransferRate caps the bytes/s this server sends to learners, so
	// rebalancing leaves room for foreground traffic; default 64 MiB/s, 0 = no cap.
	TransferRate int64 `mapstructure:"transfer-rate"`
	// Pprof serves /debug/pprof on the metrics address; default false.
	Pprof bool `mapstructure:"pprof"`
	// Reflection serves gRPC server reflection on the gRPC listener, so
	// grpcurl and other generic clients can list and call the services
	// without the .proto files; default true.
	Reflection bool `mapstructure:"reflection"`
	// MaxConnections bounds the connections that have made a call, clients
	// and peers; a call on one more fails with ResourceExhausted until one
	// closes. Default 4096, 0 = no bound.
	MaxConnections int `mapstructure:"max-connections"`
	// MaxStreams bounds the concurrent calls on one connection; default 1024.
	MaxStreams uint32 `mapstructure:"max-streams"`
	// MaxPendingConnections bounds the connections accepted that have not
	// made their first call yet (handshaking, or silent); they do not count
	// against MaxConnections. At the bound new connections wait in the
	// kernel's backlog until one of these is 100ms old; then the oldest of
	// them that has sent nothing (else the oldest) is closed for the next.
	// Default 1024, 0 = no bound.
	MaxPendingConnections int `mapstructure:"max-pending-connections"`
	// HandshakeTimeout closes a connection whose TLS and HTTP/2 handshake is
	// not done this long after it was accepted; default 5s.
	HandshakeTimeout time.Duration `mapstructure:"handshake-timeout"`
	// FirstRequestTimeout closes a connection that has made no call this
	// long after it was accepted; default 10s, at least HandshakeTimeout.
	FirstRequestTimeout time.Duration `mapstructure:"first-request-timeout"`
	// IdleTimeout closes (with an HTTP/2 GOAWAY) a connection that has had
	// no call in progress for this long; default 5m, 0 = never.
	IdleTimeout time.Duration `mapstructure:"idle-timeout"`
	// MaxBatchInflight bounds the puts and deletes of one Batch stream that
	// wait for the chain at once; past it the stream stops reading requests.
	// Default 1024.
	MaxBatchInflight int `mapstructure:"max-batch-inflight"`
	// MaxBatchQueuedBytes bounds the bytes of answers one Batch stream holds
	// that its client has not read yet; past it the stream stops reading
	// requests until the client reads. Default 8 MiB.
	MaxBatchQueuedBytes int `mapstructure:"max-batch-queued-bytes"`
	// BatchStallTimeout closes, with ResourceExhausted, a Batch stream that
	// has stopped reading at MaxBatchQueuedBytes and whose client has read
	// no answer for this long; default 30s.
	BatchStallTimeout time.Duration `mapstructure:"batch-stall-timeout"`
	// ScanMaxPageKeys bounds the keys of one Scan page; a request for more
	// (or for none) gets this many. Default 1000.
	ScanMaxPageKeys int `mapstructure:"scan-max-page-keys"`
	// ScanMaxPageBytes bounds the key and value bytes of one Scan page; a
	// page holds at least one key whatever its size, so a scan always
	// moves on. Default 1 MiB, at most half of MaxMessageBytes.
	ScanMaxPageBytes int `mapstructure:"scan-max-page-bytes"`
	// RateLimit is each user's key operations per second on this server,
	// 0 = no limit (default); RateBurst is the burst above it (default 100).
	RateLimit float64 `mapstructure:"rate-limit"`
	RateBurst int     `mapstructure:"rate-burst"`
	// MaxMessageBytes bounds one gRPC message the server receives or sends;
	// it must hold the cluster's largest key and value plus 5 MiB (ecs start
	// passes exactly that). Default: enough for the largest limits allowed.
	MaxMessageBytes int `mapstructure:"max-message-bytes"`
	// Forward sends a request for a key this server does not serve in
	// that role (not the head for a write, not the tail for a read) on
	// to the server that does, instead of refusing it; default true.
	Forward bool `mapstructure:"forward"`
	// MaxForwards bounds the requests this server forwards at once; past
	// it one is refused with ResourceExhausted. Default 1024.
	MaxForwards int `mapstructure:"max-forwards"`
	DHT         `mapstructure:",squash"`
	RESP        `mapstructure:",squash"`
	TLS         `mapstructure:",squash"`
}

// DHT configures a kvserver's VoidPhone DHT API: plain TCP, without
// encryption or authentication, its keys in a namespace of their own.
type DHT struct {
	// DHTListen is the address of the DHT API; "" (the default) is off.
	DHTListen string `mapstructure:"dht-listen"`
	// DHTAllowInsecure lets the plaintext DHT API run on a server with
	// TLS, which otherwise refuses to start with dht-listen; default false.
	DHTAllowInsecure bool `mapstructure:"dht-allow-insecure"`
	// DHTMaxConnections bounds the open DHT connections; one more is
	// closed at once. Default 1024, 0 = no bound.
	DHTMaxConnections int `mapstructure:"dht-max-connections"`
	// DHTMaxInflight bounds the pipelined requests of one DHT connection
	// being served or answered; past it the connection is not read.
	// Default 16.
	DHTMaxInflight int `mapstructure:"dht-max-inflight"`
	// DHTIdleTimeout closes a DHT connection that sends no message, or
	// reads no answer, for this long; default 5m, 0 = never.
	DHTIdleTimeout time.Duration `mapstructure:"dht-idle-timeout"`
}

// RESP configures a kvserver's Redis protocol front door: plain TCP,
// without encryption; with users, a connection logs in with AUTH.
type RESP struct {
	// RESPListen is the address of the Redis protocol front door; ""
	// (the default) is off.
	RESPListen string `mapstructure:"resp-listen"`
	// RESPAllowInsecure lets the plaintext front door, where AUTH sends
	// passwords in the clear, run on a server with TLS, which otherwise
	// refuses to start with resp-listen; default false.
	RESPAllowInsecure bool `mapstructure:"resp-allow-insecure"`
	// RESPMaxConnections bounds the open Redis protocol connections; one
	// more is refused at once. Default 1024, 0 = no bound.
	RESPMaxConnections int `mapstructure:"resp-max-connections"`
	// RESPIdleTimeout closes a Redis protocol connection that sends no
	// command, or reads no answer, for this long; default 5m, 0 = never.
	RESPIdleTimeout time.Duration `mapstructure:"resp-idle-timeout"`
}

// The client's read modes (Client.ReadMode).
const (
	ReadTail    = "tail"
	ReadNearest = "nearest"
)

// Client configures the kvclient library and binary.
type Client struct {
	// Servers bootstraps the ring from these kvservers; when empty the ring is
	// read from etcd.
	Servers        []string      `mapstructure:"server"`
	EtcdEndpoints  []string      `mapstructure:"etcd-endpoints"`  // default 127.0.0.1:2379
	Cluster        string        `mapstructure:"cluster"`         // default "default"
	DialTimeout    time.Duration `mapstructure:"dial-timeout"`    // default 3s
	RequestTimeout time.Duration `mapstructure:"request-timeout"` // per call, retries included; default 10s
	LogLevel       string        `mapstructure:"log-level"`       // default warn
	// User logs in as this user when the cluster has authentication.
	User string `mapstructure:"user"`
	// PasswordFile holds User's password (first line); Password (from
	// ECSKV_PASSWORD) is used when no file is given.
	PasswordFile string `mapstructure:"password-file"`
	Password     string `mapstructure:"password"`
	// ReadMode is how Get reads when the call does not say: "tail" (the
	// default) reads from the chain's tail, "nearest" from the nearest
	// member where the key is clean. Both are linearizable.
	ReadMode string `mapstructure:"read-mode"`
	// Zone is the client's failure domain, as a kvserver's --zone: reads
	// in nearest mode go to a chain member in it when there is one.
	// Default "" (none).
	Zone string `mapstructure:"zone"`
	// Coords place the client among the servers' --coords: when no chain
	// member shares its zone, a nearest read goes to the member at the
	// least distance, before the lowest measured latency. Default none.
	Coords []float64 `mapstructure:"coords"`
	TLS    `mapstructure:",squash"`
}
