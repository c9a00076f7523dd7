package arena

import (
	"fmt"
	"unsafe"

	"github.com/offheap/offheap/pages"
	"github.com/offheap/offheap/sizeclasses"
	"github.com/offheap/offheap/spans"
)

// Sizes and resizing of live objects: UsableSize and Realloc on Heap and
// Cache. Both find the object with objectAt, which applies Free's checks
// (a published span, the start of an object, an allocated slot) without
// changing anything, so a bad pointer is refused before any memory moves.

// UsableSize returns the bytes the object at p really has: its size
// class's object size for a small object (at least what was asked for),
// whole pages for a large one, the rounded size for a guarded one. All of
// them may be used; Realloc to any size up to it stays in place if the
// size class (or page count) stays the same.
//
// A pointer that is not the start of a live object of this heap gets
// ErrInvalidPointer (region memory included: regions do not track
// objects), a freed one ErrDoubleFree; after Close, ErrClosed.
func (h *Heap) UsableSize(p unsafe.Pointer) (int, error) {
	// A per-P section (closing.go): the heap's one inflight counter,
	// written by every goroutine calling this, cost a contended cache line
	// per call (85 ns a call from 2 goroutines on the 2-vCPU machine).
	shard, ok := h.enterByP()
	if !ok {
		return 0, ErrClosed
	}
	defer h.leaveByP(shard)
	_, n, err := h.objectAt(uintptr(p))
	return int(n), err
}

// UsableSize is Heap.UsableSize; it returns ErrClosed once the Cache is
// closed.
func (c *Cache) UsableSize(p unsafe.Pointer) (int, error) {
	if c.closed {
		return 0, ErrClosed
	}
	return c.h.UsableSize(p)
}

// Realloc resizes the object at p to size bytes and returns it, moved or
// not. Its first min(size, UsableSize(p)) bytes are kept, and the bytes
// from size to the end of the result's UsableSize are zero, so bytes that
// a later Realloc exposes read as zero provided the caller writes only
// within the size it last asked for.
//
// The object stays in place (the same pointer comes back) when size falls
// in its size class, or for a large object needs the same number of pages;
// otherwise Realloc allocates size bytes, copies, and frees p, and p must
// not be used again. Shrinking to another class moves too, so that the
// memory is really given back.
//
// Realloc(nil, size) is Alloc(size). Realloc(p, 0) is not a free: like
// Alloc(0) it returns a distinct 0-byte object (p itself if p already has
// the smallest class), never nil, so the result is always the one live
// object to free.
//
// Errors change nothing: a size < 0 returns ErrInvalidSize; a p that Free
// would refuse returns ErrInvalidPointer or ErrDoubleFree; if the new
// object cannot be had (ErrOutOfMemory, ErrInvalidSize), p stays allocated
// with its contents. Safe for concurrent use, as Alloc and Free; the
// caller must not free or resize the same object concurrently.
func (h *Heap) Realloc(p unsafe.Pointer, size int) (unsafe.Pointer, error) {
	return h.realloc(nil, p, size)
}

// Realloc is Heap.Realloc through the Cache: a move allocates from it and
// frees through it. It returns ErrClosed once the Cache is closed.
func (c *Cache) Realloc(p unsafe.Pointer, size int) (unsafe.Pointer, error) {
	if c.closed {
		return nil, ErrClosed
	}
	return c.h.realloc(c, p, size)
}

// allocVia and freeVia allocate and free through c, or the heap for nil.
func (h *Heap) allocVia(c *Cache, size int) (unsafe.Pointer, error) {
	if c != nil {
		return c.Alloc(size)
	}
	return h.Alloc(size)
}

func (h *Heap) freeVia(c *Cache, p unsafe.Pointer) error {
	if c != nil {
		return c.Free(p)
	}
	return h.Free(p)
}

func (h *Heap) realloc(c *Cache, p unsafe.Pointer, size int) (unsafe.Pointer, error) {
	if size < 0 {
		return nil, fmt.Errorf("%w: Realloc to %d bytes", ErrInvalidSize, size)
	}
	if p == nil {
		return h.allocVia(c, size)
	}
	// One slow section (closing.go) across the check, the copy and the
	// free, so a concurrent Close cannot unmap the memory in between; the
	// Alloc and Free inside open their own sections, and see ErrClosed if
	// Close began meanwhile.
	shard, ok := h.enterByP()
	if !ok {
		return nil, ErrClosed
	}
	defer h.leaveByP(shard)
	s, usable, err := h.objectAt(uintptr(p))
	if err != nil {
		return nil, err
	}
	if spanFits(s, uintptr(size)) {
		if uintptr(size) < usable {
			clear(unsafe.Slice((*byte)(unsafe.Add(p, size)), usable-uintptr(size)))
		}
		return p, nil
	}
	q, err := h.allocVia(c, size)
	if err != nil {
		return nil, err
	}
	copy(unsafe.Slice((*byte)(q), size), unsafe.Slice((*byte)(p), min(usable, uintptr(size))))
	if err := h.freeVia(c, p); err != nil {
		// p was checked live above, so only a free racing with this one
		// (the caller's bug) gets here: give the new object back and
		// report it.
		_ = h.freeVia(c, q)
		return nil, err
	}
	return q, nil
}

// spanFits reports whether an object of size bytes could have been
// allocated in s: the same size class for a small object, the same page
// count for a large one, the same rounded size for a guarded one. It is
// the rule typedFree checks a typed free by.
func spanFits(s *spans.Span, size uintptr) bool {
	if cl := s.Class; cl != 0 {
		return size <= sizeclasses.MaxSmallSize && sizeclasses.SizeToClass(size) == cl
	}
	return classZeroFits(s, size)
}

// objectAt finds the live object starting at addr, with Free's checks and
// errors, changing nothing: its span and usable size. The caller holds a
// slow section (enter). Region memory is refused (regions track no
// objects); viewAt accepts it.
func (h *Heap) objectAt(addr uintptr) (s *spans.Span, usable uintptr, err error) {
	s = h.spans.Lookup(addr)
	if s == nil {
		switch {
		case addr == 0:
			return nil, 0, fmt.Errorf("%w: nil", ErrInvalidPointer)
		case h.spans.FreedStart(addr):
			return nil, 0, fmt.Errorf("%w: %#x is the start of a freed span", ErrDoubleFree, addr)
		case !h.spans.InReservation(addr):
			return nil, 0, fmt.Errorf("%w: %#x is not in this heap", ErrInvalidPointer, addr)
		}
		return nil, 0, fmt.Errorf("%w: %#x is not in an allocated span", ErrInvalidPointer, addr)
	}
	if cl := s.Class; cl != 0 {
		off := addr - s.Base
		idx := sizeclasses.ObjIndex(cl, off)
		if idx*uintptr(s.ElemSize) != off || idx >= uintptr(s.NElems) {
			return nil, 0, fmt.Errorf("%w: %#x is inside an object of %s", ErrInvalidPointer, addr, s.Describe())
		}
		if st := *s.Slot(idx); (st != spans.SlotAllocated && st != spans.SlotSampled) || s.FreedBit(idx) {
			return nil, 0, fmt.Errorf("%w: %#x (slot %d of %s)", ErrDoubleFree, addr, idx, s.Describe())
		}
		return s, uintptr(s.ElemSize), nil
	}
	switch s.State() {
	case spans.StateLarge:
		if addr != s.Base {
			return nil, 0, fmt.Errorf("%w: %#x is inside the large object of %s", ErrInvalidPointer, addr, s.Describe())
		}
		return s, uintptr(s.NPages) * pages.PageSize, nil
	case spans.StateGuarded:
		if addr != guardedObject(s) {
			return nil, 0, fmt.Errorf("%w: %#x is inside the guarded object of %s", ErrInvalidPointer, addr, s.Describe())
		}
		return s, uintptr(s.ElemSize), nil
	case spans.StateGuardedFreed:
		if addr == guardedObject(s) {
			return nil, 0, fmt.Errorf("%w: %#x (guarded, in quarantine)", ErrDoubleFree, addr)
		}
		return nil, 0, fmt.Errorf("%w: %#x is inside a freed guarded object", ErrInvalidPointer, addr)
	case spans.StateManual:
		return nil, 0, fmt.Errorf("%w: %#x is region memory, which has no objects of its own", ErrInvalidPointer, addr)
	}
	// Freed between the lookup and the state read.
	return nil, 0, fmt.Errorf("%w: %#x (%s)", ErrDoubleFree, addr, s.Describe())
}
