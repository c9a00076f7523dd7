package arena

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/offheap/offheap/mmap"
	"github.com/offheap/offheap/pages"
	"github.com/offheap/offheap/sizeclasses"
	"github.com/offheap/offheap/spans"
)

// allocSpan is the one way pages become a span; its four steps are
// described once, in doc.go ("The span allocation path").
//
// The span is returned published, owned by OwnerTransit for small classes
// (the caller installs it in a cache or hands it to a central list).
func (h *Heap) allocSpan(npages uintptr, class uint8, pc *pages.Cache) (*spans.Span, error) {
	return h.allocSpanState(npages, class, spans.StateLarge, pc)
}

// allocSpanState is allocSpan publishing a class-0 span in state st
// (StateLarge for a large object, StateManual for a region's span).
func (h *Heap) allocSpanState(npages uintptr, class uint8, st spans.State, pc *pages.Cache) (*spans.Span, error) {
	base, scav, err := h.allocPages(npages, pc)
	if err != nil {
		return nil, err
	}
	dirty := false // pages that were left PROT_NONE, contents unknown
	if scav > 0 {
		if dirty, err = h.sysUsed(base, npages); err != nil {
			// Still PROT_NONE (in part at least): back as released, and
			// listed as left PROT_NONE (releaseUncommitted).
			h.releaseUncommitted(base, npages)
			return nil, err
		}
		h.scav.recommitted.Add(uint64(scav * pages.PageSize))
	}
	nelems, elem := uint32(1), npages*pages.PageSize
	if class != 0 {
		nelems, elem = uint32(sizeclasses.Objects(class)), sizeclasses.Size(class)
	}
	s, err := h.spans.New(nelems)
	if err != nil {
		h.releasePages(base, npages)
		return nil, fmt.Errorf("%w: %w", ErrOutOfMemory, err)
	}
	// Pages never scavenged may hold old data. Scavenged pages read back
	// as zero only under MADV_DONTNEED: MADV_FREE may leave old contents,
	// and in strict mode a failed re-commit can hand back pages as
	// released that were not (see sysUsed), so both clear every span.
	// Pages left PROT_NONE by a failed quarantine restore may hold data
	// (guard.go), so a span that re-committed any is cleared too.
	if scav != npages || h.cfg.Decommit != mmap.DecommitDontNeed || dirty {
		clear(unsafe.Slice((*byte)(h.ptr(base)), npages*pages.PageSize))
	}
	if h.cfg.Debug && class != 0 {
		// Free slots hold poison in debug mode, from the start.
		poison(h.ptr(base), npages*pages.PageSize)
	}
	s.Base, s.NPages, s.Class, s.ElemSize = base, uint32(npages), class, uint32(elem)
	h.classSpans[class].Add(1)
	if class != 0 {
		st = spans.StateInUse
		s.SetOwner(spans.OwnerTransit)
	}
	h.spans.Publish(s, st)
	return s, nil
}

// freeSpan unpublishes s and gives its pages back. Only the lock-free part
// touches the span; the heap lock covers the page bitmap update alone.
//
// In debug mode the pages are made PROT_NONE and quarantined instead, so a
// use after free faults until they are reused (guard.go).
func (h *Heap) freeSpan(s *spans.Span) {
	h.spans.Unpublish(s)
	h.disposeSpan(s)
}

// disposeSpan is the second half of freeSpan, for a span already
// unpublished: it returns the record and the pages.
func (h *Heap) disposeSpan(s *spans.Span) {
	base, npages := s.Base, uintptr(s.NPages)
	h.classSpans[s.Class].Add(-1)
	h.spans.Release(s)
	if h.cfg.Debug && h.mapping.Decommit(base, npages*pages.PageSize, mmap.DecommitStrict) == nil {
		h.quarantine(quarantined{base: base, npages: npages})
		return
	}
	h.releasePages(base, npages)
}

// releasePages returns in-use pages to the page allocator.
func (h *Heap) releasePages(base, npages uintptr) {
	h.lock.Lock()
	err := h.pages.Free(base, npages)
	h.lock.Unlock()
	if err != nil {
		panic(fmt.Sprintf("offheap: freeing pages [%#x, +%d pages): %v", base, npages, err))
	}
	h.inusePages.Add(-uint64(npages))
}

// sysUsed re-commits pages that had been returned to the kernel; the
// caller holds no lock. The page allocator already moved their bytes out
// of HeapReleased when it cleared their scavenged bits.
//
// Under MADV_DONTNEED and MADV_FREE the pages stay mapped read/write, so
// there is nothing to do (the kernel faults fresh pages in on touch, and a
// MADV_FREE page not yet reclaimed simply stays), except for pages on
// h.noAccess: a quarantined range whose restore failed went back still
// PROT_NONE, in any mode, and is made read/write here (dirty reports it:
// such pages may hold old data). In strict mode released whole chunks are
// PROT_NONE: the chunks the span touches are made read/write again, whole,
// so PROT_NONE ranges stay whole chunks and the mapping count stays
// bounded (see package scavenge). A huge page hint (Config.HugePages) is a
// flag of the mapping that survives madvise and mprotect, so it needs no
// call here. A failed commit returns an error wrapping ErrOutOfMemory.
func (h *Heap) sysUsed(base, npages uintptr) (dirty bool, err error) {
	if h.noAccessN.Load() != 0 {
		if dirty, err = h.commitNoAccess(base, npages); err != nil {
			return false, err
		}
	}
	if h.cfg.Decommit != mmap.DecommitStrict {
		return dirty, nil
	}
	lo := base &^ (pages.ChunkBytes - 1)
	hi := (base + npages*pages.PageSize + pages.ChunkBytes - 1) &^ (pages.ChunkBytes - 1)
	if err := h.mapping.Commit(lo, hi-lo); err != nil {
		return false, fmt.Errorf("%w: re-committing released pages: %w", ErrOutOfMemory, err)
	}
	return dirty, nil
}

// commitNoAccess takes the parts of [base, +npages) listed on h.noAccess
// off the list and makes them read/write, reporting whether there were
// any. The caller owns those pages (they are in its new span), so nobody
// else can touch them between the unlock and the mprotect. If a commit
// fails the error wraps ErrOutOfMemory, and the caller gives the whole
// range back with releaseUncommitted, which lists it again.
func (h *Heap) commitNoAccess(base, npages uintptr) (bool, error) {
	end := base + npages*pages.PageSize
	var take []grownRange
	h.lock.Lock()
	keep := make([]grownRange, 0, len(h.noAccess)+1)
	for _, r := range h.noAccess {
		rEnd := r.base + r.npages*pages.PageSize
		lo, hi := max(r.base, base), min(rEnd, end)
		if lo >= hi {
			keep = append(keep, r)
			continue
		}
		take = append(take, grownRange{lo, (hi - lo) / pages.PageSize})
		if r.base < lo {
			keep = append(keep, grownRange{r.base, (lo - r.base) / pages.PageSize})
		}
		if hi < rEnd {
			keep = append(keep, grownRange{hi, (rEnd - hi) / pages.PageSize})
		}
	}
	if len(take) > 0 {
		h.noAccess = keep
		h.noAccessN.Store(int64(len(keep)))
	}
	h.lock.Unlock()
	for _, r := range take {
		if err := h.mapping.Commit(r.base, r.npages*pages.PageSize); err != nil {
			return false, fmt.Errorf("%w: re-committing pages left PROT_NONE: %w", ErrOutOfMemory, err)
		}
	}
	return len(take) > 0, nil
}

// releaseUncommitted gives back the pages of a span whose re-commit
// (sysUsed) failed: some may still be PROT_NONE, and those that were not
// scavenged may hold old data. They go back as scavenged (they may be
// inaccessible, so they must be committed before use) and on h.noAccess,
// in the same critical section, so the span that takes them next commits
// them and clears them: returned as scavenged alone, in DecommitDontNeed
// mode, the old data of the pages that had not been scavenged would have
// been handed out as zeroed memory (FuzzFaults found it: a quarantine
// restore and a re-commit both refused, then a guarded object read a
// freed object's bytes).
func (h *Heap) releaseUncommitted(base, npages uintptr) {
	h.lock.Lock()
	err := h.pages.FreeScavenged(base, npages)
	if err == nil {
		h.noAccess = append(h.noAccess, grownRange{base, npages})
		h.noAccessN.Store(int64(len(h.noAccess)))
	}
	h.lock.Unlock()
	if err != nil {
		panic(fmt.Sprintf("offheap: freeing pages [%#x, +%d pages): %v", base, npages, err))
	}
	h.inusePages.Add(-uint64(npages))
	h.budgetMoved(-int64(npages))
}

// allocPages takes npages contiguous pages for a span and counts them in
// use. scav is how many of them had been returned to the kernel.
func (h *Heap) allocPages(npages uintptr, pc *pages.Cache) (base, scav uintptr, err error) {
	if npages == 0 || npages > (h.limit-h.base)/pages.PageSize {
		return 0, 0, fmt.Errorf("%w: %w: %d pages exceed the %d-byte reservation",
			ErrInvalidSize, ErrOutOfMemory, npages, h.limit-h.base)
	}
	// The page cache is skipped under a memory limit or budget, so every
	// commit of scavenged pages is checked against it under the lock.
	if pc != nil && npages < pages.CacheMaxRun && h.cfg.MemoryLimit == 0 && h.cfg.Budget == nil {
		if base, scav = h.allocFromPageCache(npages, pc); base != 0 {
			h.inusePages.Add(uint64(npages))
			return base, scav, nil
		}
	}
	h.budgetObserve()
	for tries := 0; ; tries++ {
		h.lock.Lock()
		if over := h.overLimitLocked(npages); over > 0 {
			h.lock.Unlock()
			if tries == 0 && h.relieve(over) >= over {
				continue
			}
			return 0, 0, h.limitError(npages)
		}
		base, scav, err = h.pages.Alloc(npages)
		if err == nil {
			h.inusePages.Add(uint64(npages))
		}
		h.lock.Unlock()
		if err == nil {
			h.budgetMoved(int64(scav))
			return base, scav, nil
		}
		if !errors.Is(err, pages.ErrNoSpace) {
			panic(fmt.Sprintf("offheap: page allocator refused %d pages: %v", npages, err))
		}
		if err := h.grow(npages); err != nil {
			return 0, 0, err
		}
	}
}

// allocFromPageCache serves a small run from the worker's page cache,
// refilling the cache under the lock when it is empty.
func (h *Heap) allocFromPageCache(npages uintptr, pc *pages.Cache) (base, scav uintptr) {
	if base, scav = pc.Alloc(npages); base != 0 {
		h.cachedPages.Add(-int64(npages))
		h.cachedScav.Add(-int64(scav))
		return base, scav
	}
	h.flushPageCache(pc)
	for range 2 {
		h.lock.Lock()
		err := h.pages.AllocCache(pc)
		h.lock.Unlock()
		if err == nil {
			n, sc := pc.Counts()
			h.cachedPages.Add(int64(n))
			h.cachedScav.Add(int64(sc))
			break
		}
		if !errors.Is(err, pages.ErrNoSpace) {
			panic(fmt.Sprintf("offheap: page allocator refused a page cache block: %v", err))
		}
		if h.grow(pages.CachePages) != nil {
			return 0, 0
		}
	}
	if base, scav = pc.Alloc(npages); base != 0 {
		h.cachedPages.Add(-int64(npages))
		h.cachedScav.Add(-int64(scav))
	}
	return base, scav
}

// flushPageCache gives a page cache's free pages back to the allocator.
func (h *Heap) flushPageCache(pc *pages.Cache) {
	if pc.Empty() {
		*pc = pages.Cache{}
		return
	}
	n, sc := pc.Counts()
	h.lock.Lock()
	err := h.pages.FlushCache(pc)
	h.lock.Unlock()
	if err != nil { // an invariant broken: the cache is not what was handed out
		panic(fmt.Sprintf("offheap: returning a page cache: %v", err))
	}
	h.cachedPages.Add(-int64(n))
	h.cachedScav.Add(-int64(sc))
}

// committedLocked is the memory counted against MemoryLimit: every grown
// page that has not been returned to the kernel. Caller holds h.lock.
func (h *Heap) committedLocked() uintptr {
	h.lock.assertHeld("committedLocked")
	st := h.pages.Stats()
	released := st.Scavenged + uintptr(h.cachedScav.Load())
	return (st.Grown - released) * pages.PageSize
}

// overLimitLocked returns how many bytes past MemoryLimit, or past the
// Budget, taking npages (assumed all needing a commit) would go, or 0.
func (h *Heap) overLimitLocked(npages uintptr) uintptr {
	h.lock.assertHeld("overLimitLocked")
	over := h.budgetOverLocked(npages)
	if h.cfg.MemoryLimit == 0 {
		return over
	}
	need := h.committedLocked() + npages*pages.PageSize
	if need <= uintptr(h.cfg.MemoryLimit) {
		return over
	}
	return max(over, need-uintptr(h.cfg.MemoryLimit))
}

// grow makes at least npages more pages allocatable: it claims whole chunks
// past the grown part under the lock, commits them, their span table
// entries and the page allocator's metadata for them (CommitGrow) with the
// lock dropped, and under the lock again hands them to the page allocator
// as free and scavenged (they have no physical pages yet), which makes no
// system call. Chunks whose commit, or whose metadata's commit, failed are
// retried first. Grow failing after CommitGrow succeeded is a broken
// invariant: it panics, with the lock released.
func (h *Heap) grow(npages uintptr) error {
	need := (npages*pages.PageSize + pages.ChunkBytes - 1) &^ (pages.ChunkBytes - 1)
	h.lock.Lock()
	var r grownRange
	if n := len(h.pendingGrow); n > 0 {
		r = h.pendingGrow[n-1]
		h.pendingGrow = h.pendingGrow[:n-1]
	} else {
		if need > h.limit-h.growNext {
			h.lock.Unlock()
			return fmt.Errorf("%w: reservation of %d bytes exhausted", ErrOutOfMemory, h.limit-h.base)
		}
		r = grownRange{h.growNext, need / pages.PageSize}
		h.growNext += need
	}
	h.lock.Unlock()

	err := h.mapping.Commit(r.base, r.npages*pages.PageSize)
	if err == nil {
		// The span table's page map entries for the new pages (committed
		// as a prefix, so this also covers chunks still pending).
		err = h.spans.Grow((r.base + r.npages*pages.PageSize - h.base) / pages.PageSize)
		if err == nil {
			// The page allocator's metadata for the chunks, committed
			// here without the heap lock (CommitGrow has its own), so
			// that Grow under the lock makes no system call.
			if err = h.pages.CommitGrow(r.base, r.npages); err != nil {
				err = fmt.Errorf("growing the heap's page metadata: %w", err)
			}
		}
	}
	if err != nil {
		// Retried first; committing again what did succeed is harmless.
		h.lock.Lock()
		h.pendingGrow = append(h.pendingGrow, r)
		h.lock.Unlock()
		return fmt.Errorf("%w: growing the heap: %w", ErrOutOfMemory, err)
	}
	h.lock.Lock()
	err = h.pages.Grow(r.base, r.npages)
	h.lock.Unlock()
	if err != nil {
		panic(fmt.Sprintf("offheap: growing [%#x, +%d pages): %v", r.base, r.npages, err))
	}
	return nil
}
