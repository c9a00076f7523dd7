//go:build race || offheap_nolinkname

package arena

import "sync/atomic"

// Race-detector builds, and builds with the tag offheap_nolinkname. The
// detector cannot see the ordering that pinning to a P provides, nor tell a
// counter's single writer from many; without linkname there is no pinning
// at all. So here per-P caches are taken with a mutex, and counters use
// atomic adds: a cache's counters are bumped under its mutex but read by
// Stats without it, so plain increments would be data races. Behaviour is
// the same; only the cost differs.

func bump(p *uint64) { atomic.AddUint64(p, 1) }

func (h *Heap) acquireP() *Cache {
	return h.fastP(pickP(len(*h.pcs.Load())))
}

func (h *Heap) releaseP(c *Cache) { c.pmu.Unlock() }

// Fast sections (closing.go): counted in inflight like slow ones, since
// nothing here pins across them; Close needs no stop-the-world.
// openFast counts the section even when it reports the heap closed: the
// caller's closeFast undoes it either way.
func (h *Heap) openFast() (pid int, ok bool) {
	h.inflight.Add(1)
	pid = pickP(len(*h.pcs.Load()))
	return pid, !h.closed.Load()
}

func (h *Heap) closeFast() { h.leave() }

func (h *Heap) fastToSlow() {} // already counted

// fastP takes the P's cache under its mutex. A cache that trimPerP has
// dropped is marked closed under that mutex, and the table it was loaded
// from is stale by then: load again.
func (h *Heap) fastP(pid int) *Cache {
	for {
		pcs := *h.pcs.Load()
		if pid >= len(pcs) {
			return nil
		}
		c := pcs[pid]
		c.pmu.Lock()
		if !c.closed {
			return c
		}
		c.pmu.Unlock()
	}
}

func (h *Heap) fastPDone(c *Cache) { c.pmu.Unlock() }

func waitPinned() {}

// Nothing to wait for: users of a per-P cache hold its mutex, and
// trimPerP marks a dropped cache closed under it (see fastP).
func waitDropped() {}

func lockDropped(c *Cache)   { c.pmu.Lock() }
func unlockDropped(c *Cache) { c.pmu.Unlock() }

// Cache fast sections are ordinary fast sections here (counted in
// inflight): there is no stop-the-world to order a plain sequence word.
func (c *Cache) openCache() bool {
	_, ok := c.h.openFast()
	return ok
}

func (c *Cache) closeCache() { c.h.closeFast() }

func (h *Heap) endFast(*Cache) { h.closeFast() }

func (c *Cache) openSlow() bool { return c.h.enter() }

func (c *Cache) closeSlow() { c.h.leave() }

func (h *Heap) toSlow(*Cache) { h.fastToSlow() }

func (h *Heap) reopenFast(*Cache) int {
	pid, _ := h.openFast()
	return pid
}

func (h *Heap) waitCacheSections() {}
