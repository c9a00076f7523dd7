//go:build race

package arena

import "sync/atomic"

// Race-detector builds. The detector cannot see the ordering that pinning
// to a P provides, nor tell a counter's single writer from many, so here
// counters use atomic adds and per-P caches are taken with a mutex.
// Behaviour is the same; only the cost differs.

func bump(p *uint64) { atomic.AddUint64(p, 1) }

func (h *Heap) acquireP() *Cache {
	pid := procPin()
	procUnpin()
	if pid < len(h.pcs) {
		c := h.pcs[pid]
		c.pmu.Lock()
		return c
	}
	return nil
}

func (h *Heap) releaseP(c *Cache) { c.pmu.Unlock() }
