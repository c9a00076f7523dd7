//go:build !race && !offheap_nolinkname

package arena

import (
	"runtime"
	"sync/atomic"
	"time"
)

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

// Cache fast sections (closing.go) in normal builds: no pinning, just the
// cache's sequence word, odd while a section is open. The owner writes it
// with plain stores; Close reads it atomically after its stop-the-world.
// The closed load between the two stores also keeps the compiler from
// merging them (an atomic load reads memory, so the first store is not
// dead).

// openCache opens a fast section of c's owner and reports whether the heap
// is open; either way the caller ends it with closeCache.
func (c *Cache) openCache() bool {
	c.seq++
	return !c.h.closed.Load()
}

// closeCache ends a fast section opened by openCache.
func (c *Cache) closeCache() { c.seq++ }

// openSlow opens a section of c's owner that may block (a refill taking
// locks, entering the kernel, or panicking): the same odd sequence word as
// a fast section, so Close waits for it in waitCacheSections, and no write
// to the heap's shared inflight counter. It reports false, with the
// section closed again, if the heap is closed. The caller ends it with
// closeSlow, deferred, so that a panic ends it too.
func (c *Cache) openSlow() bool {
	c.seq++
	if c.h.closed.Load() {
		c.seq++
		return false
	}
	return true
}

// closeSlow ends a section opened by openSlow.
func (c *Cache) closeSlow() { c.seq++ }

// The free path's section operations (Heap.free), for a section opened by
// openCache (c non-nil) or by openFast (c nil, the per-P path).

// endFast ends the section.
func (h *Heap) endFast(c *Cache) {
	if c != nil {
		c.seq++
		return
	}
	procUnpin()
}

// toSlow turns the section into a slow one, to be ended by leave: counted
// in inflight first, then the fast section ended, so Close, which waits
// for fast sections before it reads inflight, cannot miss it.
func (h *Heap) toSlow(c *Cache) {
	h.inflight.Add(1)
	h.endFast(c)
}

// reopenFast opens a fast section again (after toSlow) and returns the P
// for the per-P path. The caller holds a slow section, so it ignores closed.
func (h *Heap) reopenFast(c *Cache) int {
	if c != nil {
		c.seq++
		return 0
	}
	return procPin()
}

// waitCacheSections returns once every Cache fast section that was open
// when it was called has ended. Close calls it after setting closed and
// stopping the world (quiesce). Why that suffices: a section stores its odd
// sequence word, then loads closed. A section that loaded closed as false
// did so before Close's store of closed. Its own store of the odd word came
// first in program order, but may still sit in its CPU's store buffer (x86
// lets a later load pass an earlier store; so do weaker machines). The
// stop-the-world makes every goroutine running Go code stop at a safe point
// and acknowledge with an atomic operation, which publishes its earlier
// stores; a goroutine not running went through the scheduler's own atomics
// when it stopped. So after waitPinned every such odd word is visible here,
// and a section that opens later loads closed as true (Close's store is
// sequentially consistent and came before the stop-the-world). The wait is
// for the word to change, not to become even: a later section sees closed
// and returns ErrClosed without touching heap memory.
func (h *Heap) waitCacheSections() {
	type open struct {
		c   *Cache
		seq uint32
	}
	var waits []open
	h.statsMu.Lock()
	for _, c := range h.caches {
		if v := atomic.LoadUint32(&c.seq); v&1 != 0 {
			waits = append(waits, open{c, v})
		}
	}
	h.statsMu.Unlock()
	for _, w := range waits {
		for d := drainPollMin; atomic.LoadUint32(&w.c.seq) == w.seq; d = min(2*d, drainPollMax) {
			time.Sleep(d)
		}
	}
}
