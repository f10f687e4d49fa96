package kvserver

import (
	"github.com/ecskv/ecskv/config"
	"github.com/ecskv/ecskv/kvserver/resp"
)

// startRESP starts the Redis protocol front door when resp-listen is set.
// Like the DHT API it reaches the cluster through the library, by this
// server's own address and with its certificate; unlike it, it asks for
// no namespace of its own: a connection without a login uses the one of
// library clients without a login, and a user's connection a client
// logged in as that user, so the servers place and isolate its keys by
// the user's token as for any library client.
func (s *Server) startRESP() error {
	if s.cfg.RESPListen == "" {
		return nil
	}
	cc := config.DefaultClient()
	cc.Servers, cc.Cluster, cc.LogLevel = []string{s.cfg.Advertise}, s.cfg.Cluster, s.cfg.LogLevel
	files := s.cfg.Files(s.cfg.ID)
	cc.CACert, cc.Cert, cc.Key = files.CA, files.Cert, files.Key
	s.respKV = resp.NewClientCluster(cc, s.authOn, s.checkPassword)
	s.resp = resp.New(resp.Config{
		Listen:          s.cfg.RESPListen,
		ServerID:        s.cfg.ID,
		MaxConnections:  s.cfg.RESPMaxConnections,
		IdleTimeout:     s.cfg.RESPIdleTimeout,
		RequestTimeout:  cc.RequestTimeout,
		MaxBulkBytes:    s.cfg.MaxMessageBytes,
		MaxRequestBytes: s.cfg.MaxMessageBytes,
	}, s.respKV, s.lg.Named("resp"), resp.NewMetrics(s.metrics.reg))
	return s.resp.Start()
}

// authOn reports whether the cluster has users, as of this server's ring.
func (s *Server) authOn() bool {
	cur := s.ring.Load()
	return cur != nil && cur.Auth
}

// checkPassword checks a password against this server's user table, with
// the same back-off after failed logins per client address as Login.
func (s *Server) checkPassword(user, password, from string) error {
	_, _, err := s.auth.Login(user, password, from)
	return err
}

// RESPAddr is the address of the Redis protocol front door; "" when off.
func (s *Server) RESPAddr() string {
	if s.resp == nil {
		return ""
	}
	return s.resp.Addr().String()
}

// stopRESP closes the front door's connections and ends its commands.
func (s *Server) stopRESP() {
	if s.resp != nil {
		s.resp.Stop()
	}
	if s.respKV != nil {
		_ = s.respKV.Close()
	}
}
