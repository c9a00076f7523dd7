package arena

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/offheap/offheap/pages"
	"github.com/offheap/offheap/sizeclasses"
	"github.com/offheap/offheap/spans"
)

// The public doors of a Heap: Alloc and Free without an explicit Cache,
// the large-object path both Heap and Cache take, and the common free path
// every Free goes through, down to its rare cases (bad pointers, class-0
// spans). Small allocations go on to the per-P caches (pcache.go) or a
// Cache (cache.go).

// Alloc returns size bytes of zeroed memory from the heap, aligned as
// Cache.Alloc. Safe for concurrent use.
func (h *Heap) Alloc(size int) (unsafe.Pointer, error) {
	if uint(size) > sizeclasses.MaxSmallSize {
		return h.allocLargeEntered(size, nil)
	}
	cl := sizeclasses.SizeToClass(uintptr(size))
	pid, ok := h.openFast()
	if !ok {
		h.closeFast()
		return nil, ErrClosed
	}
	if c := h.fastP(pid); c != nil {
		if cc := &c.cls[cl]; cc.free != 0 {
			p := c.takeSlot(cc)
			if cc.needzero {
				clearObj(p, cc.size)
			}
			h.fastPDone(c)
			h.closeFast()
			return p, nil
		}
		h.fastPDone(c)
	}
	h.closeFast()
	return h.allocSmallSlow(cl, size)
}

// Free frees an object allocated from this heap, through any Cache or the
// Heap. Safe for concurrent use. Errors as Cache.Free.
func (h *Heap) Free(p unsafe.Pointer) error {
	pid, ok := h.openFast()
	if !ok {
		h.closeFast()
		return ErrClosed
	}
	s := h.spans.Lookup(uintptr(p))
	if s != nil {
		// The common case first (Cache.freeOwned), with the P's cache.
		if c := h.fastP(pid); c != nil {
			ok := c.freeOwned(s, uintptr(p))
			h.fastPDone(c)
			if ok {
				h.closeFast()
				return nil
			}
		}
	}
	return h.free(nil, pid, p, s)
}

// allocLargeEntered is allocLarge in a slow section (closing.go), for the
// public entry points.
func (h *Heap) allocLargeEntered(size int, pc *pages.Cache) (unsafe.Pointer, error) {
	if !h.enter() {
		return nil, ErrClosed
	}
	defer h.leave()
	return h.allocLarge(size, pc)
}

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

// free is the common free path. The caller has opened a fast section
// (openCache for a Cache c, or openFast with pid its P for Heap.Free, c
// nil; see closing.go) and free ends it, or the slow section it turned
// into, on every return. Heap.Free uses the P's cache.
//
// Checks, in order, each failing with nothing changed: the pointer lies in
// a published span, it is the start of an object, the object is allocated.
// The object is left as it is (allocations clear what they hand out, see
// Cache.take), except in debug mode, where it is poisoned before it is
// marked free. A free of a small object that stays in its span takes no
// lock and stays in the fast section; everything that may block (errors,
// class-0 spans, profile samples, central lists) turns it slow first.
//
// s is h.spans.Lookup(p), looked up by the caller inside the section:
// typed frees need the span first, to check the object's size class, and
// look it up only once.
func (h *Heap) free(c *Cache, pid int, p unsafe.Pointer, s *spans.Span) error {
	addr := uintptr(p)
	if s == nil || s.Class == 0 {
		h.toSlow(c)
		return h.freeRare(s, addr)
	}
	// Small-object spans, the common case, are always StateInUse once
	// published; every other kind of span is class 0.
	cl := s.Class
	off := addr - s.Base
	idx := sizeclasses.ObjIndex(cl, off)
	if !h.uncheckedFree {
		if idx*uintptr(s.ElemSize) != off || idx >= uintptr(s.NElems) {
			h.toSlow(c)
			return h.badFree(ErrInvalidPointer, s, addr, idx)
		}
		// The freed bitmap is read only when a remote free is pending
		// (pending shares the header's line): a free of a cold span
		// misses on the table entry, the header and the state byte. A
		// remote free still being counted (pending one low) races with
		// this one; Collect catches that as a racing double free.
		if st := *s.Slot(idx); (st != spans.SlotAllocated && st != spans.SlotSampled) || (s.Pending() != 0 && s.FreedBit(idx)) {
			h.toSlow(c)
			return h.badFree(ErrDoubleFree, s, addr, idx)
		}
	}
	// counted: the free also holds a slow section (taken to forget a
	// profile sample, which locks), ended after the fast one.
	counted := false
	if h.sampling && *s.Slot(idx) == spans.SlotSampled {
		// The sample is forgotten before the slot is freed, so a new
		// sample at the same address cannot be the one dropped. The rest
		// runs in a fresh fast section (its closed check can be ignored:
		// the count held keeps the memory mapped).
		h.toSlow(c)
		h.forgetSample(addr)
		pid = h.reopenFast(c)
		counted = true
	}
	gen := s.Gen()
	if h.cfg.Debug {
		poison(p, uintptr(s.ElemSize))
	}

	// fc is the cache freeing: c, or the P's (nil for a P past the table).
	fc := c
	if c == nil {
		fc = h.fastP(pid)
	}
	// A remote free goes out as a batch (remotefree.go): the cache's,
	// or a batch of this free alone, published at once, where it cannot
	// join one (a sampled slot, a P with no cache, or Heap.Free where
	// goroutines do not know their P, per-P caches taken at random).
	var old, now remoteBatch
	direct := true
	switch owner := s.Owner(); {
	case fc != nil && owner == fc.id:
		s.SetNeedZero()
		fc.localFree(&fc.cls[cl], s, idx)
		bump(&fc.cnt.frees[cl])
	case fc != nil && (c != nil || perPByP) && *s.Slot(idx) == spans.SlotAllocated:
		old, now, direct = fc.addRemote(s, idx, gen, owner == spans.OwnerCentral)
	default:
		if fc != nil {
			bump(&fc.cnt.frees[cl])
		} else {
			atomic.AddUint64(&h.sharedCnt.frees[cl], 1)
		}
		now = remoteBatch{s: s, word: idx / 64, bits: 1 << (idx % 64), gen: gen}
	}
	if c == nil && fc != nil {
		h.fastPDone(fc)
	}
	var err error
	if old.bits == 0 && now.bits == 0 {
		h.endFast(c)
	} else {
		err = h.publishEnd(c, old, now, direct, addr, idx)
	}
	if counted {
		h.leave()
	}
	return err
}

// freeRare frees a pointer in no small-object span: it is either bad or in
// a class-0 span. It runs in a slow section and ends it.
func (h *Heap) freeRare(s *spans.Span, addr uintptr) error {
	defer h.leave()
	if s == nil {
		if h.spans.FreedStart(addr) {
			return fmt.Errorf("%w: %#x is the start of a freed span", ErrDoubleFree, addr)
		}
		if !h.spans.InReservation(addr) {
			return fmt.Errorf("%w: %#x is not in this heap", ErrInvalidPointer, addr)
		}
		return fmt.Errorf("%w: %#x is not in an allocated span", ErrInvalidPointer, addr)
	}
	return h.freeClassZero(s, addr)
}

// badFree builds the error of a free refused in a small-object span: kind
// ErrInvalidPointer for an address inside an object, ErrDoubleFree for a
// slot that is not allocated. It runs in a slow section and ends it
// (formatting allocates, and reads the span record).
func (h *Heap) badFree(kind error, s *spans.Span, addr, idx uintptr) error {
	defer h.leave()
	if kind == ErrInvalidPointer {
		return fmt.Errorf("%w: %#x is inside an object of %s", ErrInvalidPointer, addr, s.Describe())
	}
	return fmt.Errorf("%w: %#x (slot %d of %s)", ErrDoubleFree, addr, idx, s.Describe())
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
