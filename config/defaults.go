package config

import "time"

// Defaults shared by the parts.
const (
	DefaultCluster       = "default"
	DefaultEtcdEndpoint  = "127.0.0.1:2379"
	DefaultPartitions    = 1024
	DefaultReplicas      = 3
	DefaultMaxKeyBytes   = 1024
	DefaultMaxValueBytes = 1 << 20
	DefaultLogLevel      = "warn"
)

// DefaultECS returns the ECS defaults (DESIGN §10).
func DefaultECS() ECS {
	return ECS{
		Cluster:       DefaultCluster,
		DataDir:       "./data",
		Servers:       5,
		Host:          "127.0.0.1",
		BasePort:      5001,
		EtcdPort:      2379,
		Replicas:      DefaultReplicas,
		Partitions:    DefaultPartitions,
		HTTP:          "127.0.0.1:9400",
		MaxKeyBytes:   DefaultMaxKeyBytes,
		MaxValueBytes: DefaultMaxValueBytes,
		LeaseTTL:      3 * time.Second,
		ReadyTimeout:  60 * time.Second,
		LogLevel:      DefaultLogLevel,
		ProbeInterval: 150 * time.Millisecond,
		ProbeTimeout:  200 * time.Millisecond,
		ProbeFailures: 3,
		MaxMoves:      8,
		TokenTTL:      10 * time.Minute,
	}
}

// DefaultKVServer returns the kvserver defaults.
func DefaultKVServer() KVServer {
	return KVServer{
		Cluster:        DefaultCluster,
		EtcdEndpoints:  []string{DefaultEtcdEndpoint},
		LeaseTTL:       3 * time.Second,
		Sync:           true,
		CacheEntries:   100_000,
		CacheBytes:     64 << 20,
		LeanLog:        true,
		SyncDelay:      300 * time.Microsecond,
		RawWALSync:     true,
		LogLevel:       DefaultLogLevel,
		TransferRate:   64 << 20,
		MaxConnections: 4096,
		// The largest key and value limits allowed, plus a replication batch.
		MaxMessageBytes: maxKeyLimit + maxValueLimit + 5<<20,
		MaxStreams:      1024,
		RateBurst:       100,
		Reflection:      true,

		MaxPendingConnections: 1024,
		HandshakeTimeout:      5 * time.Second,
		FirstRequestTimeout:   10 * time.Second,
		IdleTimeout:           5 * time.Minute,
		MaxBatchInflight:      1024,
		Forward:               true,
		MaxForwards:           1024,
		MaxBatchQueuedBytes:   8 << 20,
		BatchStallTimeout:     30 * time.Second,
		ScanMaxPageKeys:       1000,
		ScanMaxPageBytes:      1 << 20,
		DHT:                   DHT{DHTMaxConnections: 1024, DHTMaxInflight: 16, DHTIdleTimeout: 5 * time.Minute},
		RESP:                  RESP{RESPMaxConnections: 1024, RESPIdleTimeout: 5 * time.Minute},
	}
}

// DefaultClient returns the client defaults; they find the cluster `make run` starts.
func DefaultClient() Client {
	return Client{
		EtcdEndpoints:  []string{DefaultEtcdEndpoint},
		Cluster:        DefaultCluster,
		DialTimeout:    3 * time.Second,
		RequestTimeout: 10 * time.Second,
		LogLevel:       DefaultLogLevel,
		ReadMode:       ReadTail,
	}
}

// DefaultAdmin returns the admin commands' defaults: the cluster `make run` starts.
func DefaultAdmin() Admin {
	return Admin{EtcdEndpoints: []string{DefaultEtcdEndpoint}, Cluster: DefaultCluster}
}
