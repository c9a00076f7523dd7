package arena

import (
	"unsafe"

	"github.com/offheap/offheap/spans"
)

// Defragmentation hints.
//
// After a mass delete the survivors are scattered: nearly every span keeps
// a few live objects, so no span empties and no page can go back to the
// kernel, however little is live. The heap cannot move objects itself (it
// does not know who points to them), but their owner can: allocate a new
// object, copy, repoint, free the old one. That is only worth doing for an
// object whose span is sparse and not being allocated from, because then
// the new object lands in a fuller span (a cache fills the span it owns
// before it takes another) and the sparse span drains towards empty, when
// it is freed and its pages scavenged. DefragHint tells the owner which
// objects those are, as jemalloc's defrag hint tells Redis's active
// defragmentation.

const (
	// defragOccupancyDiv: an object is worth moving when its span has
	// fewer than NElems/defragOccupancyDiv live objects. Emptying a span
	// at occupancy u costs u×NElems copies and frees the whole span, so
	// each move frees at least defragOccupancyDiv slots' worth of memory
	// with 2; past one half, moving the objects of a span costs more
	// copies than the room it gives back, and a heap whose central spans
	// are all at least half full already uses under twice its live bytes.
	// After a mass delete of 90 % spans sit near 10 %, far below it.
	defragOccupancyDiv = 2
)

// DefragHint reports whether moving the object at p (Alloc a new object of
// its size, copy, repoint, Free p) would probably help return memory: p is
// a live small object, no cache owns its span (so new allocations do not
// come from that span: they come from cache-owned spans, which caches fill
// before letting go), and the span is less than half full (see
// defragOccupancyDiv), counting frees not yet collected as done.
//
// It is a hint, read without a lock: the span may change owner or
// occupancy right after. It is cheap (a span lookup and a few atomic
// loads), safe for concurrent use with everything, and changes nothing.
//
// It returns false, never an error or a panic, for anything else: a large
// or guarded object (moving it frees its pages directly and gains
// nothing), an object in a cache-owned span or a full-enough one, region
// memory, a pointer that is not the start of a live object of this heap
// (nil, interior, freed, foreign), and after Close. The caller must own
// the object (not free it concurrently) for the answer to mean anything.
func (h *Heap) DefragHint(p unsafe.Pointer) bool {
	shard, ok := h.enterByP() // per-P: see UsableSize
	if !ok {
		return false
	}
	defer h.leaveByP(shard)
	s, _, err := h.objectAt(uintptr(p))
	if err != nil || s.Class == 0 || s.State() != spans.StateInUse {
		return false
	}
	return defragWorth(s)
}

// DefragHint is Heap.DefragHint; false once the Cache is closed.
func (c *Cache) DefragHint(p unsafe.Pointer) bool {
	if c.closed {
		return false
	}
	return c.h.DefragHint(p)
}

// defragWorth applies the occupancy rule to small-object span s.
func defragWorth(s *spans.Span) bool {
	if s.Owner() != spans.OwnerCentral {
		return false
	}
	// Allocated counts uncollected frees as allocated; Pending counts
	// them. The two loads are not one snapshot, and Pending may dip below
	// zero for an instant: clamp, it is only a hint.
	live := int64(s.Allocated()) - int64(max(s.Pending(), 0))
	if live <= 0 {
		// Empty but not yet freed: the last free is freeing it now, so p
		// cannot be live; and if it is (a stale count) moving it is moot.
		return false
	}
	return live*defragOccupancyDiv < int64(s.NElems)
}
