package arena

import (
	"sync/atomic"

	"github.com/offheap/offheap/pages"
	"github.com/offheap/offheap/sizeclasses"
	"github.com/offheap/offheap/spans"
)

// cacheSpan returns a span of class cl with at least one free slot, owned
// by OwnerTransit: the caller installs it in a cache. It reuses a central
// partial span when there is one, else allocates a new span.
func (h *Heap) cacheSpan(cl uint8, pc *pages.Cache) (*spans.Span, error) {
	c := &h.central[cl]
	c.mu.Lock()
	s := c.popFullest(h.spans)
	var bad spans.BadFree
	if s != nil {
		// Frees that arrived while it sat here become free slots now.
		var n uint32
		n, bad = h.collect(s)
		s.SetAllocated(s.Allocated() - n)
		s.SetOwner(spans.OwnerTransit)
		c.cached.Add(1)
	}
	c.mu.Unlock()
	if bad.N > 0 {
		// The span is consistent (Collect dropped the bad bits): hand it
		// back, then report with no lock held.
		h.uncacheSpan(s) // a second report adds nothing
		h.raise(bad.Message())
	}
	if s != nil {
		return s, nil
	}
	s, err := h.allocSpan(sizeclasses.Pages(cl), cl, pc)
	if err == nil {
		c.cached.Add(1)
	}
	return s, err
}

// uncacheSpan takes a span the caller holds in transit back to the central
// lists, or frees it when no object in it is live.
//
// Remote frees race with the hand-back: a freer sets its freed bit and then
// reads the owner; here the owner is set to central and then freed bits are
// collected. Go's atomics are sequentially consistent, so either the
// collection below sees the bit or the freer sees OwnerCentral and
// collects it itself under the class lock.
//
// A racing double free found by either collection is returned in bad,
// once the span is back in place, for the caller to panic with when it
// has finished what it was doing.
func (h *Heap) uncacheSpan(s *spans.Span) (bad spans.BadFree) {
	// Still ours: collect and count without the class lock.
	_, bad = h.collect(s)
	n := s.CountAllocated()
	c := &h.central[s.Class]
	c.cached.Add(-1)
	c.mu.Lock()
	s.SetOwner(spans.OwnerCentral)
	got, bad2 := h.collect(s)
	n -= got
	if bad.N == 0 {
		bad = bad2
	}
	s.SetAllocated(n)
	if n == 0 {
		c.mu.Unlock()
		h.freeSpan(s)
		return bad
	}
	var err error
	if n == s.NElems {
		err = c.full.Push(h.spans, s)
	} else {
		err = c.pushPartial(h.spans, s)
	}
	c.mu.Unlock()
	panicIfErr(err)
	return bad
}

// partialBuckets is how many partial lists a class keeps, by occupancy
// (quarters). A cache taking a span from the central lists takes one from
// the fullest bucket (popFullest): allocating into the fullest spans lets
// the sparse ones drain and be freed, so after a mass delete the heap
// converges back towards its live size instead of spreading new objects
// over sparse survivors. Four buckets are enough to tell sparse spans from
// dense ones; a span's bucket is its occupancy when it was listed (remote
// frees into a listed span take no lock, so it is not moved as it drains).
const partialBuckets = 4

// partialBucket is the bucket of a span about to be listed as partial:
// its live objects (allocated, less the remote frees pending) in quarters
// of its slots. Class lock held.
func partialBucket(s *spans.Span) uint8 {
	live := int64(s.Allocated()) - int64(s.Pending())
	b := live * partialBuckets / int64(max(s.NElems, 1))
	return uint8(min(max(b, 0), partialBuckets-1))
}

// pushPartial lists s as partial in its occupancy bucket. Class lock held.
func (c *central) pushPartial(t *spans.Table, s *spans.Span) error {
	b := partialBucket(s)
	if err := c.partial[b].Push(t, s); err != nil {
		return err
	}
	s.Bucket = b
	return nil
}

// removePartial takes s off the partial list it is on. Class lock held.
func (c *central) removePartial(t *spans.Table, s *spans.Span) error {
	return c.partial[s.Bucket%partialBuckets].Remove(t, s)
}

// popFullest takes a span from the fullest non-empty partial bucket, or
// returns nil. Class lock held.
func (c *central) popFullest(t *spans.Table) *spans.Span {
	for b := partialBuckets - 1; b >= 0; b-- {
		if s := c.partial[b].Pop(t); s != nil {
			return s
		}
	}
	return nil
}

// panicIfErr panics with a list operation's refusal: an internal invariant
// broken, found under a class lock and raised after it.
func panicIfErr(err error) {
	if err != nil {
		panic("offheap: " + err.Error())
	}
}

// collect is s.Collect, uncounting the frees it drops: both sides of a
// racing double free counted a free, but only one freed the object. Safe
// pinned or under a lock (one atomic add, only when something was wrong).
func (h *Heap) collect(s *spans.Span) (uint32, spans.BadFree) {
	n, bad := s.Collect()
	if bad.N > 0 {
		atomic.AddUint64(&h.sharedCnt.frees[s.Class], -uint64(bad.N))
	}
	return n, bad
}

// panicIfBad panics with the report of a racing double free that Collect
// found, if it found one. Callers hold no lock and are not pinned.
func (h *Heap) panicIfBad(bad spans.BadFree) {
	if bad.N > 0 {
		h.raise(bad.Message())
	}
}

// raise panics with a failed check's report (doc.go: such panics are
// raised with no lock of the heap held and not pinned, so recover leaves
// the heap usable). Invariants builds assert the no-lock part here; the
// runtime itself refuses a panic while pinned ("panic holding locks").
func (h *Heap) raise(msg string) {
	h.assertUnlocked(msg)
	panic(msg)
}

// relistDiv sets how many remote frees a full central span waits for
// before it moves to the partial lists: an eighth of its slots (at least
// one). Moving it on its first free, as before, made every cache refill
// in a workload whose live set outgrows the caches (larson with 100,000
// objects per worker) take a span with one or two free slots, one class
// lock round trip per one or two allocations; Go's sweeper likewise
// reclaims a span's frees in batches. The price is memory: a full span
// may hold up to an eighth of its slots freed and not yet reusable (they
// are reused once it is relisted, or the span freed when its last object
// goes).
const relistDiv = 8

// relistMin is the least relistAt for spans of 8 objects or more (half
// the slots for smaller ones): the classes larson's sizes mostly fall in
// (hundreds of bytes) have 8 to 32 objects a span, where an eighth is one
// to four, and a refill taking one object per class lock round trip is
// what relistDiv is there to avoid.
const relistMin = 4

// relistAt is the pending remote-free count at which the freer that
// reaches it moves the full central span s to the partial lists.
func relistAt(s *spans.Span) int32 {
	return int32(max(s.NElems/relistDiv, min(s.NElems/2, relistMin), 1))
}

// remoteDue reports whether remote frees that took s's pending count from
// prev to n oblige their freer to take the class lock (remoteCentral): the
// count crossed relistAt, or covers every object the span had allocated.
func remoteDue(s *spans.Span, prev, n int32) bool {
	at := relistAt(s)
	return (prev < at && n >= at) || n >= int32(s.Allocated())
}

// remoteCentral follows remote frees (their bits set, pending counted from
// prev to n) into a span no cache owned when the freer looked. Most such
// frees take no lock: the bits wait for whoever next takes the span. The
// class lock is taken only by the freer that brings the span's
// uncollected frees to relistAt, to move it from the full list to the
// partial one, and when every live object of the span has been freed, to
// collect and free the span. gen is the record generation the freer saw
// before setting its bits: if the record was reused since, the span it
// freed into is gone and there is nothing to do.
func (h *Heap) remoteCentral(s *spans.Span, cl uint8, gen uint32, prev, n int32) {
	if !remoteDue(s, prev, n) {
		return
	}
	c := &h.central[cl]
	c.mu.Lock()
	// A central span is on a list until the holder of this lock that frees
	// it takes it off and unpublishes it, both before unlocking: so a span
	// seen here in use, central and listed is still the one that was freed
	// into, and no one else is freeing it.
	if s.Gen() != gen || s.State() != spans.StateInUse || s.Owner() != spans.OwnerCentral || s.List == spans.ListNone {
		c.mu.Unlock()
		return
	}
	// Relisted only with relistAt frees pending now, not on the freer's
	// word: its n may be stale. A freer delayed between counting its free
	// and taking this lock can find the span taken by a cache since,
	// filled, handed back full and listed full again with fewer frees
	// pending; relisting it then broke the full-list rule (Verify:
	// "on list 1, want 2", seen once in TestWorkloadsInProcess).
	if s.List == spans.ListFull && s.Pending() >= relistAt(s) {
		err := c.full.Remove(h.spans, s)
		if err == nil {
			err = c.pushPartial(h.spans, s)
		}
		if err != nil {
			c.mu.Unlock()
			panicIfErr(err)
		}
	}
	if s.Pending() < int32(s.Allocated()) {
		c.mu.Unlock()
		return
	}
	got, bad := h.collect(s)
	s.SetAllocated(s.Allocated() - got)
	if s.Allocated() != 0 {
		c.mu.Unlock()
		h.panicIfBad(bad)
		return
	}
	var err error
	if s.List == spans.ListFull {
		err = c.full.Remove(h.spans, s)
	} else {
		err = c.removePartial(h.spans, s)
	}
	if err != nil {
		c.mu.Unlock()
		panicIfErr(err)
	}
	h.spans.Unpublish(s) // under the lock: see above
	c.mu.Unlock()
	h.disposeSpan(s)
	h.panicIfBad(bad)
}
