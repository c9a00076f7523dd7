package arena

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// Closing a heap while other goroutines still call it.
//
// Close unmaps the reservation, the page allocator's metadata and the span
// table, and a call that touches any of them afterwards faults the whole
// process. So every call that touches them runs inside a section that
// Close waits for, and Close unmaps only when no section is open. There
// are two kinds of section:
//
//   - Fast sections, the hot paths of Heap.Alloc/Free and Cache.Alloc/Free.
//     In normal builds, Heap's (openFast ... closeFast) run pinned to their
//     P (procPin): the goroutine cannot be preempted or descheduled until
//     it unpins, and after pinning it re-reads closed. They need the pin
//     anyway to pick the P's cache. A Cache's (openCache ... closeCache)
//     do not pin: the owner makes its cache's sequence word odd with a
//     plain store, reads closed, and makes the word even again at the end
//     (sync_norace.go, waitCacheSections, says why Close cannot miss one).
//     No atomic read-modify-write is added either way. A fast section that
//     must block (take a lock, enter the kernel, format an error) first
//     turns itself into a slow section (fastToSlow, toSlow: count itself
//     in inflight while still inside, then end the fast section).
//   - Slow sections, everything else that touches heap memory or metadata
//     (enter ... leave): they add one to inflight and then re-read closed,
//     backing out if it is set. They already take locks or make system
//     calls, so one more atomic pair costs little, except that inflight is
//     one line written by every goroutine: a Cache's allocation slow path,
//     frequent in some workloads, uses its sequence word instead (openSlow
//     ... closeSlow), as its fast sections do.
//
// Close sets closed, then waits out both kinds (quiesce): first a
// stop-the-world (waitPinned), which cannot complete while any goroutine
// is pinned, so every pinned fast section that could have read closed as
// false has ended (or turned slow, counting itself in inflight first);
// then, for each Cache whose sequence word is odd, it waits for the word
// to change (waitCacheSections); then it polls inflight down to zero. Go's atomics are sequentially consistent, so
// a slow section either sees closed or is seen by Close in inflight. After
// that nothing that saw the heap open is still running, and every later
// call sees closed and returns ErrClosed without touching heap memory. The
// Go runtime's sync.Pool relies on the same property of pinning: its
// cleanup runs with the world stopped, never inside a pinned section.
//
// Race-detector builds take per-P caches with a mutex instead of pinning
// (sync_race.go), so there every fast section is counted in inflight like
// a slow one and Close does not need the stop-the-world.
//
// What stays the caller's job: pointers returned by Alloc (and slices and
// strings built on them) dangle once Close returns, and touching them
// faults; reading or writing heap memory is not an API call and nothing
// here can guard it. An allocation that raced with Close may succeed and
// return such a pointer.
//
// Region.Alloc's bump path touches no heap memory or metadata (the chunk
// it bumps through is on the Go heap), so it only checks closed; its span
// refills are slow sections.

const (
	// drainPollMin and drainPollMax bound the sleep between Close's checks
	// of inflight. Slow sections last from a microsecond (a lock) to a few
	// milliseconds (zeroing or releasing large spans); starting short and
	// doubling keeps Close prompt in the common case without spinning on
	// a long one.
	drainPollMin = 10 * time.Microsecond
	drainPollMax = time.Millisecond
)

// enter opens a slow section: it reports false, with nothing held, if the
// heap is closed (or closing). On true the caller must call leave.
func (h *Heap) enter() bool {
	h.inflight.Add(1)
	if h.closed.Load() {
		h.inflight.Add(-1)
		return false
	}
	return true
}

// leave closes a slow section opened by enter or fastToSlow.
func (h *Heap) leave() { h.inflight.Add(-1) }

// slowShards is the number of shards of slowByP: a power of two at least
// the number of cores of common machines, so that slow paths on different
// Ps rarely share a line; Ps beyond it share shards, which is correct,
// only slower.
const slowShards = 64

// paddedCount is a counter on a cache line of its own.
type paddedCount struct {
	n atomic.Int64
	_ [56]byte
}

// enterByP opens a slow section counted in the shard of the current P,
// for the per-P allocation slow path: as enter, but the line written is
// (mostly) the P's own. It returns the shard for leaveByP, and false, with
// nothing held, if the heap is closed. The argument for enter holds shard
// by shard: a section that read closed as false incremented its shard
// before, and Close reads every shard after setting closed.
func (h *Heap) enterByP() (int, bool) {
	i := pickP(slowShards) & (slowShards - 1)
	h.slowByP[i].n.Add(1)
	if h.closed.Load() {
		h.slowByP[i].n.Add(-1)
		return i, false
	}
	return i, true
}

// leaveByP closes a section opened by enterByP.
func (h *Heap) leaveByP(i int) { h.slowByP[i].n.Add(-1) }

// slowInFlight reports whether any slow section is open.
func (h *Heap) slowInFlight() bool {
	if h.inflight.Load() != 0 {
		return true
	}
	for i := range h.slowByP {
		if h.slowByP[i].n.Load() != 0 {
			return true
		}
	}
	return false
}

// quiesce waits until no section that saw the heap open is still running.
// closed is already set, so no new section opens.
func (h *Heap) quiesce() {
	waitPinned()
	h.waitCacheSections()
	for d := drainPollMin; h.slowInFlight(); d = min(2*d, drainPollMax) {
		time.Sleep(d)
	}
}

// unmap releases whatever of the heap's memory is still mapped: the
// reservation, the page allocator's metadata, the span table. A part whose
// munmap fails stays mapped and recorded as such, and the error names it;
// the rest are still released, and a later call retries only what failed.
// Caller holds closeMu; the heap is closed and quiesced.
func (h *Heap) unmap() error {
	var errs []error
	if !h.gone.reservation {
		if err := h.mapping.Release(); err != nil {
			errs = append(errs, fmt.Errorf("offheap: unmapping the reservation [%#x, +%d): %w",
				h.base, h.limit-h.base, err))
		} else {
			h.gone.reservation = true
		}
	}
	if !h.gone.pages {
		if err := h.pages.Close(); err != nil {
			errs = append(errs, fmt.Errorf("offheap: unmapping the page allocator's metadata: %w", err))
		} else {
			h.gone.pages = true
		}
	}
	if !h.gone.spans {
		if err := h.spans.Close(); err != nil {
			errs = append(errs, fmt.Errorf("offheap: unmapping the span table: %w", err))
		} else {
			h.gone.spans = true
		}
	}
	return errors.Join(errs...)
}
