package core

import (
	"time"

	"github.com/veneurd/veneurd/core/status"
)

// Status describes the pipeline now (see package status).
func (s *Server) Status() *status.Status {
	cfg := s.Config()
	st := &status.Status{Hostname: cfg.Daemon.Hostname, Time: time.Now()}
	st.Config.Hash = cfg.Hash
	st.Config.IntervalSeconds = cfg.Daemon.Interval.Seconds()
	return st
}
