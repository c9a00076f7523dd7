//go:build !race && !offheap_nolinkname

package arena

import "runtime"

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
// through the scheduler's own synchronisation. The table is loaded while
// pinned, which is what lets trimPerP retire the caches it drops once a
// stop-the-world has passed (pcache.go).
func (h *Heap) acquireP() *Cache {
	pid := procPin()
	if pcs := *h.pcs.Load(); pid < len(pcs) {
		return pcs[pid]
	}
	procUnpin()
	return nil
}

// releaseP undoes acquireP.
func (h *Heap) releaseP(*Cache) { procUnpin() }

// waitDropped returns once no goroutine can still use a per-P cache that
// was in a table replaced before the call: users load the table and use
// the cache within one pinned stretch, and waitPinned outlasts every
// stretch that began before it.
func waitDropped() { waitPinned() }

// lockDropped and unlockDropped bracket marking a dropped cache closed;
// after waitDropped nobody else can reach it.
func lockDropped(*Cache)   {}
func unlockDropped(*Cache) {}

// Fast sections (closing.go). openFast pins the goroutine to its P and
// reports the P's id, and ok false if the heap is closed; either way the
// caller ends the section with closeFast (kept out of openFast so that it
// stays small enough to inline: one call, not two). The per-P cache of
// that id may then be used without a lock: fastP returns it (nil for a P
// beyond the per-P caches) and fastPDone is a no-op.
func (h *Heap) openFast() (pid int, ok bool) {
	pid = procPin()
	return pid, !h.closed.Load()
}

// closeFast ends a fast section.
func (h *Heap) closeFast() { procUnpin() }

// fastToSlow turns a fast section into a slow one, to be ended by leave:
// it counts itself in inflight while still pinned, so Close, which waits
// for every pinned goroutine before reading inflight, cannot miss it.
func (h *Heap) fastToSlow() {
	h.inflight.Add(1)
	procUnpin()
}

func (h *Heap) fastP(pid int) *Cache {
	if pcs := *h.pcs.Load(); pid < len(pcs) {
		return pcs[pid]
	}
	return nil
}

func (h *Heap) fastPDone(*Cache) {}

// waitPinned returns once every goroutine that was pinned when it was
// called has unpinned: a stop-the-world cannot complete while a goroutine
// is pinned (a pinned goroutine cannot be preempted), and ReadMemStats is
// the lightest public call that stops the world (runtime.GC and
// GOMAXPROCS changes are heavier or have effects). Measured: NewHeap +
// Alloc + Close went from about 50-75 µs to 115-125 µs on a loaded 2-core
// VM, once per Close.
func waitPinned() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
}
