package arena

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/offheap/offheap/pages"
	"github.com/offheap/offheap/sizeclasses"
	"github.com/offheap/offheap/spans"
)

// allocLarge gives an object larger than MaxSmallSize a span of its own.
func (h *Heap) allocLarge(size int, pc *pages.Cache) (unsafe.Pointer, error) {
	if size < 0 {
		return nil, fmt.Errorf("%w: %d", ErrInvalidSize, size)
	}
	if uint64(size) > uint64(h.limit-h.base) {
		return nil, fmt.Errorf("%w: %w: %d bytes exceed the %d-byte reservation",
			ErrInvalidSize, ErrOutOfMemory, size, h.limit-h.base)
	}
	if h.sampling && h.guardLarge() {
		if p, ok, err := h.allocGuarded(size); ok || err != nil {
			return p, err
		}
	}
	npages := (uintptr(size) + pages.PageSize - 1) / pages.PageSize
	s, err := h.allocSpan(npages, 0, pc)
	if err != nil {
		return nil, err
	}
	h.largeMallocs.Add(1)
	h.largeBytes.Add(uint64(npages * pages.PageSize))
	if h.sampling && h.sampleLarge(npages*pages.PageSize) {
		markLargeSampled(s)
		h.recordSample(h.ptr(s.Base), 0, npages*pages.PageSize)
	}
	return h.ptr(s.Base), nil
}

// free is the common free path. c is the caller's Cache, or nil for
// Heap.Free (which then uses the current P's cache).
//
// Checks, in order, each failing with nothing changed: the pointer lies in
// a published span, it is the start of an object, the object is allocated.
// A free slot is always zero, so the object is cleared here, before it is
// marked free.
//
// s is h.spans.Lookup(p), looked up by the caller: typed frees need the
// span first, to check the object's size class, and look it up only once.
func (h *Heap) free(c *Cache, p unsafe.Pointer, s *spans.Span) error {
	addr := uintptr(p)
	if s == nil {
		if h.spans.FreedStart(addr) {
			return fmt.Errorf("%w: %#x is the start of a freed span", ErrDoubleFree, addr)
		}
		if !h.spans.InReservation(addr) {
			return fmt.Errorf("%w: %#x is not in this heap", ErrInvalidPointer, addr)
		}
		return fmt.Errorf("%w: %#x is not in an allocated span", ErrInvalidPointer, addr)
	}
	// Small-object spans, the common case, are always StateInUse once
	// published; every other kind of span is class 0.
	cl := s.Class
	if cl == 0 {
		return h.freeClassZero(s, addr)
	}
	off := addr - s.Base
	idx := sizeclasses.ObjIndex(cl, off)
	size := uintptr(s.ElemSize)
	if !h.uncheckedFree {
		if idx*size != off || idx >= uintptr(s.NElems) {
			return fmt.Errorf("%w: %#x is inside an object of %s", ErrInvalidPointer, addr, s.Describe())
		}
		if st := *s.Slot(idx); (st != spans.SlotAllocated && st != spans.SlotSampled) || s.FreedBit(idx) {
			return fmt.Errorf("%w: %#x (slot %d of %s)", ErrDoubleFree, addr, idx, s.Describe())
		}
	}
	if h.sampling && *s.Slot(idx) == spans.SlotSampled {
		h.forgetSample(addr)
	}
	gen := s.Gen()
	h.scrub(p, size)

	if c != nil {
		if s.Owner() == c.id {
			c.localFree(s, idx)
			return nil
		}
		if !s.MarkFreed(idx) {
			return doubleFreeRace(addr, idx, s)
		}
		bump(&c.cnt.frees[cl])
	} else {
		pc := h.acquireP()
		switch {
		case pc != nil && s.Owner() == pc.id:
			pc.localFree(s, idx)
			h.releaseP(pc)
			return nil
		case !s.MarkFreed(idx):
			if pc != nil {
				h.releaseP(pc)
			}
			return doubleFreeRace(addr, idx, s)
		case pc != nil:
			bump(&pc.cnt.frees[cl])
			h.releaseP(pc)
		default:
			atomic.AddUint64(&h.sharedCnt.frees[cl], 1)
		}
	}
	// Remote free. The bit is counted, then the owner read: an owner
	// collects the bit when it runs dry or lets the span go (see
	// uncacheSpan for that race); a central span may need its lists fixed
	// or, if this was its last live object, to be freed.
	n := s.NotePending()
	if s.Owner() == spans.OwnerCentral {
		h.remoteCentral(s, cl, gen, n)
	}
	return nil
}

func doubleFreeRace(addr, idx uintptr, s *spans.Span) error {
	return fmt.Errorf("%w: %#x freed concurrently (slot %d of %s)", ErrDoubleFree, addr, idx, s.Describe())
}

// freeClassZero frees a pointer into a class-0 span: a large object, a
// guarded object, or region memory (which is refused).
func (h *Heap) freeClassZero(s *spans.Span, addr uintptr) error {
	switch s.State() {
	case spans.StateManual:
		return fmt.Errorf("%w: %#x is region memory, freed only with its region", ErrInvalidPointer, addr)
	case spans.StateGuarded:
		return h.freeGuarded(s, addr)
	case spans.StateGuardedFreed:
		if addr == guardedObject(s) {
			return fmt.Errorf("%w: %#x (guarded, in quarantine)", ErrDoubleFree, addr)
		}
		return fmt.Errorf("%w: %#x is inside a freed guarded object", ErrInvalidPointer, addr)
	}
	return h.freeLarge(s, addr)
}

// freeLarge frees a large object's span.
func (h *Heap) freeLarge(s *spans.Span, addr uintptr) error {
	if addr != s.Base {
		return fmt.Errorf("%w: %#x is inside the large object of %s", ErrInvalidPointer, addr, s.Describe())
	}
	if !s.CompareAndSwapState(spans.StateLarge, spans.StateDead) {
		return fmt.Errorf("%w: %#x freed concurrently (%s)", ErrDoubleFree, addr, s.Describe())
	}
	if *s.Slot(0) == spans.SlotSampled {
		h.forgetSample(addr)
	}
	h.largeFrees.Add(1)
	h.largeBytes.Add(-uint64(s.NPages) * pages.PageSize)
	h.freeSpan(s)
	return nil
}
