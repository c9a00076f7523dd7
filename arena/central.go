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
	s.Allocated = n
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

// collectCentral applies pending remote frees to a span no cache owns. gen
// is the record generation the freer saw before setting its bit: if the
// record was reused since, someone else already collected that bit.
func (h *Heap) collectCentral(s *spans.Span, cl uint8, gen uint32) {
	c := &h.central[cl]
	c.mu.Lock()
	if s.Gen() != gen || s.State() != spans.StateInUse || s.Owner() != spans.OwnerCentral {
		c.mu.Unlock()
		return
	}
	n := s.Collect()
	if n == 0 {
		c.mu.Unlock()
		return
	}
	wasFull := s.List == spans.ListFull
	s.Allocated -= n
	if s.Allocated == 0 {
		if wasFull {
			c.full.Remove(h.spans, s)
		} else {
			c.partial.Remove(h.spans, s)
		}
		c.mu.Unlock()
		h.freeSpan(s)
		return
	}
	if wasFull {
		c.full.Remove(h.spans, s)
		c.partial.Push(h.spans, s)
	}
	c.mu.Unlock()
}
