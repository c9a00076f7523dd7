package arena

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/offheap/offheap/pages"
	"github.com/offheap/offheap/spans"
)

const (
	// regionChunkPages is the span a Region bumps through: 64 KiB, so a
	// chunk costs one span record and wastes at most a few KiB at its end.
	regionChunkPages = 8

	// regionMaxBump is the largest request served from a shared chunk;
	// larger ones get a span of their own, so a chunk never wastes more
	// than a quarter of itself on one request.
	regionMaxBump = regionChunkPages * pages.PageSize / 4

	// regionAlign is the alignment of every region allocation (as Alloc's
	// 16 bytes for sizes of 16 and more).
	regionAlign = 16
)

// Region hands out memory by bumping an offset through spans it owns and
// frees them all at once with Free: no per-object bookkeeping, no per-object
// free.
//
// Alloc is safe for concurrent use by many goroutines: the common path is
// one atomic add, with a mutex only to take a new span. Free must not run
// concurrently with Alloc; after Free, Alloc returns ErrClosed. Region
// memory cannot be freed through a Heap or Cache (ErrInvalidPointer).
type Region struct {
	h      *Heap
	cur    atomic.Pointer[regionChunk] // the chunk being bumped through
	closed atomic.Bool
	used   atomic.Uint64 // bytes handed out

	// mu guards spans and the replacement of cur. It is never held across
	// taking or freeing a span (system calls, clearing memory).
	mu    checkedMutex
	spans []*spans.Span // every span the region holds (records off the Go heap)
	held  atomic.Uint64 // bytes in those spans
}

// regionChunk is a span being bumped through. off only grows; a bump that
// ends past size failed and leaves the chunk for good.
type regionChunk struct {
	base uintptr
	size uintptr
	off  atomic.Uintptr
}

// RegionStats describes one region.
type RegionStats struct {
	Used  uint64 // bytes handed out (rounded up to 16 each)
	Held  uint64 // bytes in the region's spans
	Spans uint64 // spans held
}

// NewRegion returns an empty region of the heap. It holds no memory until
// its first Alloc.
func (h *Heap) NewRegion() *Region {
	h.regions.Add(1)
	return &Region{h: h}
}

// Alloc returns size bytes of zeroed memory, 16-byte aligned (8 KiB for
// requests over 16 KiB), valid until the region's Free.
func (r *Region) Alloc(size int) (unsafe.Pointer, error) {
	if size < 0 {
		return nil, fmt.Errorf("%w: %d", ErrInvalidSize, size)
	}
	// The bump below touches no heap memory or metadata, so it needs no
	// section (closing.go); allocSlow and allocOwnSpan open one.
	if r.closed.Load() || r.h.closed.Load() {
		return nil, ErrClosed
	}
	n := (uintptr(max(size, 1)) + regionAlign - 1) &^ (regionAlign - 1)
	if n > regionMaxBump {
		return r.allocOwnSpan(size)
	}
	if ch := r.cur.Load(); ch != nil {
		if end := ch.off.Add(n); end <= ch.size {
			r.used.Add(uint64(n))
			return r.h.ptr(ch.base + end - n), nil
		}
	}
	return r.allocSlow(n)
}

// allocSlow takes a new chunk (unless another goroutine just did) and bumps.
// The span is taken with r.mu released: taking it may grow the heap
// (system calls), clears memory and may panic on a broken invariant, none
// of which may happen under a lock. If another goroutine installed a chunk
// with room meanwhile, the new span goes back.
func (r *Region) allocSlow(n uintptr) (unsafe.Pointer, error) {
	if !r.h.enter() {
		return nil, ErrClosed
	}
	defer r.h.leave()
	r.mu.Lock()
	p, err := r.bumpLocked(n)
	r.mu.Unlock()
	if p != nil || err != nil {
		return p, err
	}
	s, err := r.h.allocSpanState(regionChunkPages, 0, spans.StateManual, nil)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	if p, err = r.bumpLocked(n); p != nil || err != nil {
		r.mu.Unlock()
		r.h.freeSpan(s)
		return p, err
	}
	r.adopt(s)
	ch := &regionChunk{base: s.Base, size: regionChunkPages * pages.PageSize}
	ch.off.Store(n)
	r.cur.Store(ch)
	r.used.Add(uint64(n))
	r.mu.Unlock()
	return r.h.ptr(s.Base), nil
}

// bumpLocked bumps the current chunk under r.mu: the allocation, or nil if
// the chunk has no room, or ErrClosed.
func (r *Region) bumpLocked(n uintptr) (unsafe.Pointer, error) {
	r.mu.assertHeld("Region.bumpLocked")
	if r.closed.Load() {
		return nil, ErrClosed
	}
	if ch := r.cur.Load(); ch != nil {
		if end := ch.off.Add(n); end <= ch.size {
			r.used.Add(uint64(n))
			return r.h.ptr(ch.base + end - n), nil
		}
	}
	return nil, nil
}

// allocOwnSpan serves a large request with a span of its own.
func (r *Region) allocOwnSpan(size int) (unsafe.Pointer, error) {
	if uint64(size) > uint64(r.h.limit-r.h.base) {
		return nil, fmt.Errorf("%w: %w: %d bytes exceed the %d-byte reservation",
			ErrInvalidSize, ErrOutOfMemory, size, r.h.limit-r.h.base)
	}
	npages := (uintptr(size) + pages.PageSize - 1) / pages.PageSize
	if !r.h.enter() {
		return nil, ErrClosed
	}
	defer r.h.leave()
	s, err := r.h.allocSpanState(npages, 0, spans.StateManual, nil)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	if r.closed.Load() {
		r.mu.Unlock()
		r.h.freeSpan(s) // system calls: not under r.mu
		return nil, ErrClosed
	}
	r.adopt(s)
	r.used.Add(uint64(size+regionAlign-1) &^ (regionAlign - 1))
	r.mu.Unlock()
	return r.h.ptr(s.Base), nil
}

// adopt records a new span of the region. Caller holds r.mu.
func (r *Region) adopt(s *spans.Span) {
	r.spans = append(r.spans, s)
	b := uint64(s.NPages) * pages.PageSize
	r.held.Add(b)
	r.h.regionBytes.Add(int64(b))
}

// Free returns every span of the region to the heap at once. Memory from
// the region must not be used afterwards. A second Free returns ErrClosed.
func (r *Region) Free() error {
	if !r.closed.CompareAndSwap(false, true) {
		return ErrClosed
	}
	if !r.h.enter() {
		return ErrClosed
	}
	defer r.h.leave()
	// The spans are taken under r.mu and freed after it: freeing makes
	// system calls (and may panic on a broken invariant).
	r.mu.Lock()
	ss := r.spans
	r.spans = nil
	r.cur.Store(nil)
	r.held.Store(0)
	r.mu.Unlock()
	for _, s := range ss {
		b := uint64(s.NPages) * pages.PageSize
		r.h.regionBytes.Add(-int64(b))
		r.h.freeSpan(s)
	}
	r.h.regions.Add(-1)
	return nil
}

// Stats returns the region's figures.
func (r *Region) Stats() RegionStats {
	r.mu.Lock()
	n := len(r.spans)
	r.mu.Unlock()
	return RegionStats{Used: r.used.Load(), Held: r.held.Load(), Spans: uint64(n)}
}
