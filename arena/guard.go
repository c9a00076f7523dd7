package arena

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"unsafe"

	"github.com/offheap/offheap/mmap"
	"github.com/offheap/offheap/pages"
	"github.com/offheap/offheap/sizeclasses"
	"github.com/offheap/offheap/spans"
)

// Guarded allocation, in the manner of GWP-ASan and Electric Fence: a
// sampled object gets pages of its own, followed by a PROT_NONE guard
// page, and is placed as close to it as alignment allows (below). Reading
// or writing past the guard page's start faults. When
// it is freed its pages become PROT_NONE too and stay so in a quarantine,
// so a use after free faults as well. With debug.SetPanicOnFault(true) in
// the goroutine, the fault is a recoverable panic whose address
// Heap.Explain maps back to the allocation.
//
// Placement keeps Alloc's alignment promise, and that decides which
// overruns fault. A small object (up to sizeclasses.MaxSmallSize) is
// rounded up to guardAlign (16) bytes and placed to end exactly at the
// guard page, so an overrun of more than its rounding (0 to 15 bytes)
// faults at the first byte past it. A larger object must start on a page
// boundary (8 KiB alignment, as every large object), so its size is
// rounded up to whole pages and it starts at its first page: it ends at
// the guard page only when its size is a multiple of the page size, and
// otherwise an overrun lands first in the slack up to the page's end (up
// to 8191 bytes, read as zero, written unnoticed) and faults only past
// that. Underruns are not caught in either case: the page before the
// object belongs to whatever precedes it. A front guard page instead
// would catch underruns of large objects but not overruns, which are the
// more common bug, and would cost one more VMA per object.
//
// Every guarded object splits the heap's mapping into up to two more
// kernel VMAs (its data, its guard), and vm.max_map_count is 65530, so the
// number of guarded objects, live and quarantined, is bounded; past the
// bound a sampled allocation is served normally.
//
// The same quarantine holds the spans freed in Debug mode: decommitted
// strictly (PROT_NONE), so touching a freed span faults until its pages
// are reused.

const (
	// guardMaxLive bounds live guarded objects; with guardQuarantine it
	// bounds the VMAs guarding adds to about 2 × 2048.
	guardMaxLive = 1024

	// guardQuarantine is how many freed guarded objects (and, in debug
	// mode, freed spans) stay PROT_NONE before their pages are reused.
	guardQuarantine = 1024

	// guardAlign is the alignment of a small guarded object: 16, like
	// Alloc, so an overflow of less than 16 bytes past a size that is not
	// a multiple of 16 stays inside the object's rounding and is not
	// caught. Large ones are rounded to pages (see above).
	guardAlign = 16

	// guardMaxBytes bounds a guarded object's rounded size: it is kept in
	// the span's 32-bit ElemSize, which guardedObject reads back. A
	// larger sampled object is served unguarded.
	guardMaxBytes = math.MaxUint32 &^ (pages.PageSize - 1)
)

// guardObjSize is the rounded size of a guarded object of size bytes: to
// guardAlign for a small object, to whole pages above MaxSmallSize, so
// that the object, which ends where its data pages end, starts where
// Alloc's alignment promise needs. typedFree checks a typed free's size
// against it.
func guardObjSize(size uintptr) uintptr {
	if size > sizeclasses.MaxSmallSize {
		return (size + pages.PageSize - 1) &^ (pages.PageSize - 1)
	}
	return (max(size, 1) + guardAlign - 1) &^ (guardAlign - 1)
}

// guardStore tracks guarded objects and the quarantine. mu guards all of
// it; it is never held across a system call.
type guardStore struct {
	mu         sync.Mutex
	live       int
	info       map[uintptr]guardInfo // by span base, live and quarantined
	quarantine []quarantined         // FIFO, oldest first
	mallocs    uint64
	frees      uint64
	liveBytes  uint64 // span bytes of live guarded objects
	// quarantineCap bounds the quarantine; 0 means guardQuarantine. Only
	// tests set it (before first use), so that a short workload reaches
	// eviction.
	quarantineCap int
}

type guardInfo struct {
	size  uintptr
	stack []uintptr
}

// quarantined is a freed range held PROT_NONE. span is the guarded span,
// still published so its address can be explained; nil for a debug-mode
// span, already unpublished. dirty says its decommit failed: it may still
// hold the object's data (and be readable), so it must not go back as
// released, which would let a span built on it skip its clear.
type quarantined struct {
	base, npages uintptr
	span         *spans.Span
	dirty        bool
}

// allocGuarded tries to serve size bytes as a guarded object. ok false
// with a nil error means no guarded slot is free (or the guard page could
// not be set up): the caller allocates normally.
func (h *Heap) allocGuarded(size int) (p unsafe.Pointer, ok bool, err error) {
	objSize := guardObjSize(uintptr(size))
	if objSize > guardMaxBytes {
		return nil, false, nil
	}
	h.guard.mu.Lock()
	if h.guard.live >= guardMaxLive {
		h.guard.mu.Unlock()
		return nil, false, nil
	}
	h.guard.live++
	h.guard.mu.Unlock()

	dataPages := (objSize + pages.PageSize - 1) / pages.PageSize
	s, err := h.allocSpanState(dataPages+1, 0, spans.StateInit, nil)
	if err == nil {
		guardPage := s.Base + dataPages*pages.PageSize
		if derr := h.mapping.Decommit(guardPage, pages.PageSize, mmap.DecommitStrict); derr != nil {
			h.classSpans[0].Add(-1)
			h.spans.Unpublish(s)
			h.spans.Release(s)
			h.restorePages(s.Base, dataPages+1, false)
			err = derr
		}
	}
	if err != nil {
		h.guard.mu.Lock()
		h.guard.live--
		h.guard.mu.Unlock()
		return nil, false, nil
	}
	var pcs [maxProfileDepth]uintptr
	n := runtime.Callers(3, pcs[:])
	s.ElemSize = uint32(objSize)
	h.guard.mu.Lock()
	if h.guard.info == nil {
		h.guard.info = make(map[uintptr]guardInfo)
	}
	h.guard.info[s.Base] = guardInfo{size: uintptr(size), stack: append([]uintptr(nil), pcs[:n]...)}
	h.guard.mallocs++
	h.guard.liveBytes += uint64(s.NPages) * pages.PageSize
	h.guard.mu.Unlock()
	h.spans.Publish(s, spans.StateGuarded)
	return h.ptr(s.End() - pages.PageSize - objSize), true, nil
}

// guardedObject returns where the object of a guarded span starts: its
// rounded size (guardObjSize) before the guard page.
func guardedObject(s *spans.Span) uintptr {
	return s.End() - pages.PageSize - uintptr(s.ElemSize)
}

// freeGuarded frees a guarded object: its pages become PROT_NONE and go to
// the quarantine.
func (h *Heap) freeGuarded(s *spans.Span, addr uintptr) error {
	if addr != guardedObject(s) {
		return fmt.Errorf("%w: %#x is inside the guarded object of %s", ErrInvalidPointer, addr, s.Describe())
	}
	if !s.CompareAndSwapState(spans.StateGuarded, spans.StateGuardedFreed) {
		return fmt.Errorf("%w: %#x freed concurrently (%s)", ErrDoubleFree, addr, s.Describe())
	}
	dataBytes := (uintptr(s.NPages) - 1) * pages.PageSize
	// If this fails the object stays readable (and keeps its data); it is
	// still quarantined.
	dirty := h.mapping.Decommit(s.Base, dataBytes, mmap.DecommitStrict) != nil
	h.guard.mu.Lock()
	h.guard.live--
	h.guard.frees++
	h.guard.liveBytes -= uint64(s.NPages) * pages.PageSize
	h.guard.mu.Unlock()
	h.quarantine(quarantined{base: s.Base, npages: uintptr(s.NPages), span: s, dirty: dirty})
	return nil
}

// quarantine adds a PROT_NONE range and releases the oldest ones past the
// bound. The pages stay in use in the page allocator while quarantined.
func (h *Heap) quarantine(q quarantined) {
	h.guard.mu.Lock()
	h.guard.quarantine = append(h.guard.quarantine, q)
	var out []quarantined
	limit := h.guard.quarantineCap
	if limit == 0 {
		limit = guardQuarantine
	}
	if n := len(h.guard.quarantine) - limit; n > 0 {
		out = append(out, h.guard.quarantine[:n]...)
		h.guard.quarantine = append(h.guard.quarantine[:0], h.guard.quarantine[n:]...)
	}
	for _, o := range out {
		if o.span != nil {
			delete(h.guard.info, o.base)
		}
	}
	h.guard.mu.Unlock()
	for _, o := range out {
		if o.span != nil {
			h.classSpans[0].Add(-1)
			h.spans.Unpublish(o.span)
			h.spans.Release(o.span)
		}
		h.restorePages(o.base, o.npages, !o.dirty)
	}
}

// restorePages makes a PROT_NONE range readable and writable again and
// gives its pages back. released says the range was decommitted (so it
// reads back as zero and counts as scavenged). If the commit fails the
// pages may still be PROT_NONE, in any decommit mode: they go back as
// scavenged and on h.noAccess, in the same critical section, so no span
// can be built on them before sysUsed knows to commit (and clear) them.
// Keeping them out of circulation instead would need a retry point and
// would leave them in use in no span; this way the failure surfaces, if
// the kernel still refuses, as ErrOutOfMemory from the allocation that
// needs the pages, as a failed strict-mode re-commit does.
func (h *Heap) restorePages(base, npages uintptr, released bool) {
	err := h.mapping.Commit(base, npages*pages.PageSize)
	h.lock.Lock()
	var ferr error
	if released || err != nil {
		ferr = h.pages.FreeScavenged(base, npages)
	} else {
		ferr = h.pages.Free(base, npages)
	}
	if err != nil && ferr == nil {
		h.noAccess = append(h.noAccess, grownRange{base, npages})
		h.noAccessN.Store(int64(len(h.noAccess)))
	}
	h.lock.Unlock()
	if ferr != nil {
		panic(fmt.Sprintf("offheap: returning quarantined pages [%#x, +%d pages): %v", base, npages, ferr))
	}
	h.inusePages.Add(-uint64(npages))
	if released || err != nil {
		h.budgetMoved(-int64(npages))
	}
}

// AllocInfo describes the allocation at or near an address, for a fault.
type AllocInfo struct {
	Addr    uintptr   // the object's first byte
	Size    int       // its size (requested size for guarded objects)
	Class   uint8     // size class, 0 for large and guarded objects
	Guarded bool      // a guarded object
	Freed   bool      // freed (a guarded object in quarantine)
	Stack   []uintptr // allocating call stack, for guarded objects
	Span    string    // the span, described
}

// Explain maps an address, typically the Addr() of the runtime error a
// fault panicked with under debug.SetPanicOnFault, back to the allocation
// it belongs to or overran. ok is false for addresses in no span.
func (h *Heap) Explain(addr uintptr) (info AllocInfo, ok bool) {
	if !h.enter() {
		return info, false
	}
	defer h.leave()
	s := h.spans.Lookup(addr)
	if s == nil {
		return info, false
	}
	info.Span = s.Describe()
	switch st := s.State(); st {
	case spans.StateGuarded, spans.StateGuardedFreed:
		info.Guarded, info.Freed = true, st == spans.StateGuardedFreed
		info.Addr = guardedObject(s)
		h.guard.mu.Lock()
		gi := h.guard.info[s.Base]
		h.guard.mu.Unlock()
		info.Size, info.Stack = int(gi.size), gi.stack
	case spans.StateInUse:
		idx := (addr - s.Base) / uintptr(s.ElemSize)
		info.Class = s.Class
		info.Addr = s.Base + idx*uintptr(s.ElemSize)
		info.Size = int(s.ElemSize)
	default:
		info.Addr, info.Size = s.Base, int(uintptr(s.NPages)*pages.PageSize)
	}
	return info, true
}

// String describes the allocation for a crash report.
func (a AllocInfo) String() string {
	kind := "object"
	if a.Guarded {
		kind = "guarded object"
	}
	state := "live"
	if a.Freed {
		state = "freed"
	}
	s := fmt.Sprintf("%s %s of %d bytes at %#x (class %d, %s)", state, kind, a.Size, a.Addr, a.Class, a.Span)
	frames := runtime.CallersFrames(a.Stack)
	for {
		f, more := frames.Next()
		if f.Function != "" {
			s += fmt.Sprintf("\n\t%s\n\t\t%s:%d", f.Function, f.File, f.Line)
		}
		if !more {
			break
		}
	}
	return s
}
