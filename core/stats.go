package core

import "sync"

// Stats counts what the daemon sees; it grows into the self-metrics.
type Stats struct {
	mu           sync.Mutex
	packetErrors map[[2]string]uint64
}

func newStats() *Stats { return &Stats{packetErrors: map[[2]string]uint64{}} }

func (s *Stats) packetError(packetType, reason string, n uint64) {
	s.mu.Lock()
	s.packetErrors[[2]string{packetType, reason}] += n
	s.mu.Unlock()
}
