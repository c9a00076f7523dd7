//go:build !race

package arena

// Normal builds: see sync_race.go for the race-detector variant.

// bump adds one to a counter only its owner writes. A plain increment: an
// atomic add would cost about 5 ns, a quarter of an alloc+free pair.
// Readers use atomic loads; Go's memory model guarantees a word-sized read
// observes some value that was written, so a concurrent Stats is at most a
// few operations behind.
func bump(p *uint64) { *p++ }

// acquireP pins the goroutine to its P and returns that P's cache, or nil
// (unpinned) for a P beyond the per-P caches. The pin orders successive
// users of one P's cache: switching goroutines or threads on a P goes
// through the scheduler's own synchronisation.
func (h *Heap) acquireP() *Cache {
	pid := procPin()
	if pid < len(h.pcs) {
		return h.pcs[pid]
	}
	procUnpin()
	return nil
}

// releaseP undoes acquireP.
func (h *Heap) releaseP(*Cache) { procUnpin() }
