package arena

import (
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
	s := c.partial.Pop(h.spans)
	if s != nil {
		// Frees that arrived while it sat here become free slots now.
		s.SetAllocated(s.Allocated() - s.Collect())
		s.SetOwner(spans.OwnerTransit)
	}
	c.mu.Unlock()
	if s != nil {
		return s, nil
	}
	return h.allocSpan(sizeclasses.Pages(cl), cl, pc)
}

// uncacheSpan takes a span the caller holds in transit back to the central
// lists, or frees it when no object in it is live.
//
// Remote frees race with the hand-back: a freer sets its freed bit and then
// reads the owner; here the owner is set to central and then freed bits are
// collected. Go's atomics are sequentially consistent, so either the
// collection below sees the bit or the freer sees OwnerCentral and
// collects it itself under the class lock.
func (h *Heap) uncacheSpan(s *spans.Span) {
	// Still ours: collect and count without the class lock.
	s.Collect()
	n := s.CountAllocated()
	c := &h.central[s.Class]
	c.mu.Lock()
	s.SetOwner(spans.OwnerCentral)
	n -= s.Collect()
	s.SetAllocated(n)
	switch {
	case n == 0:
		c.mu.Unlock()
		h.freeSpan(s)
		return
	case n == s.NElems:
		c.full.Push(h.spans, s)
	default:
		c.partial.Push(h.spans, s)
	}
	c.mu.Unlock()
}

// remoteCentral follows a remote free (its bit set, pending counted as n)
// into a span no cache owned when the freer looked. Most such frees take
// no lock: the bit waits for whoever next takes the span. The class lock
// is taken only for the span's first uncollected free, to move it from
// the full list to the partial one, and when every live object of the span
// has been freed, to collect and free the span. gen is the record
// generation the freer saw before setting its bit: if the record was
// reused since, the span it freed into is gone and there is nothing to do.
func (h *Heap) remoteCentral(s *spans.Span, cl uint8, gen uint32, n int32) {
	if n != 1 && n < int32(s.Allocated()) {
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
	if s.List == spans.ListFull && s.Pending() > 0 {
		c.full.Remove(h.spans, s)
		c.partial.Push(h.spans, s)
	}
	if s.Pending() < int32(s.Allocated()) {
		c.mu.Unlock()
		return
	}
	s.SetAllocated(s.Allocated() - s.Collect())
	if s.Allocated() != 0 {
		c.mu.Unlock()
		return
	}
	if s.List == spans.ListFull {
		c.full.Remove(h.spans, s)
	} else {
		c.partial.Remove(h.spans, s)
	}
	h.spans.Unpublish(s) // under the lock: see above
	c.mu.Unlock()
	h.disposeSpan(s)
}
