package kvserver

import (
	"time"

	"github.com/ecskv/ecskv/config"
	"github.com/ecskv/ecskv/kvserver/dht"
)

// startDHT starts the VoidPhone DHT API when dht-listen is set. It reaches
// the cluster through the library, by this server's own address and with
// its certificate, so it routes every key to its chain like any client and
// the servers admit its namespace (frontDoorNS).
func (s *Server) startDHT() error {
	if s.cfg.DHTListen == "" {
		return nil
	}
	cc := config.DefaultClient()
	cc.Servers, cc.Cluster, cc.LogLevel = []string{s.cfg.Advertise}, s.cfg.Cluster, s.cfg.LogLevel
	files := s.cfg.Files(s.cfg.ID)
	cc.CACert, cc.Cert, cc.Key = files.CA, files.Cert, files.Key
	s.dhtKV = dht.NewClientStore(cc)
	s.dht = dht.New(dht.Config{
		Listen:         s.cfg.DHTListen,
		MaxConnections: s.cfg.DHTMaxConnections,
		MaxInflight:    s.cfg.DHTMaxInflight,
		IdleTimeout:    s.cfg.DHTIdleTimeout,
		RequestTimeout: cc.RequestTimeout,
		MaxTTL:         MaxTTLMs * time.Millisecond,
	}, s.dhtKV, s.lg.Named("dht"), dht.NewMetrics(s.metrics.reg))
	return s.dht.Start()
}

// DHTAddr is the address of the DHT API; "" when it is off.
func (s *Server) DHTAddr() string {
	if s.dht == nil {
		return ""
	}
	return s.dht.Addr().String()
}

// stopDHT closes the DHT API's connections and ends its requests.
func (s *Server) stopDHT() {
	if s.dht != nil {
		s.dht.Stop()
	}
	if s.dhtKV != nil {
		_ = s.dhtKV.Close()
	}
}
