package arena

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/offheap/offheap/mmap"
	"github.com/offheap/offheap/pages"
	"github.com/offheap/offheap/scavenge"
)

// The heap's side of scavenging: one release step (releaseRun), the
// adapter the background policy (package scavenge) drives, and the worker
// goroutine's start and stop.

const (
	// hugePagePages is a 2 MiB transparent huge page in heap pages.
	hugePagePages = scavenge.HugePage / pages.PageSize
	// scavMinPages is the background scavenger's smallest batch, 64 KiB.
	scavMinPages = scavenge.MinBatch / pages.PageSize
)

// scavStats are the scavenger's counters.
type scavStats struct {
	released    atomic.Uint64 // bytes released, every path
	failures    atomic.Uint64 // releases the kernel refused
	recommitted atomic.Uint64 // scavenged bytes taken again by spans
	maxHold     atomic.Int64  // longest heap-lock hold in a release step, ns
}

// releaseRun is one release step: take the highest run of free committed
// pages (at most maxPages, aligned to align pages) out of the page
// allocator under the lock, release it with the lock dropped, then give it
// back under the lock as scavenged, or, if the kernel refused, as plain
// free pages to be retried later: a failed release loses nothing. It
// returns the bytes released, 0 with a nil error when there was no run.
//
// In strict mode only whole chunks become PROT_NONE; smaller runs are
// released with MADV_DONTNEED alone, so PROT_NONE ranges are whole chunks
// and the mapping count stays bounded.
func (h *Heap) releaseRun(maxPages, align uintptr) (uintptr, error) {
	h.lock.Lock()
	t0 := time.Now()
	base, n, ok := h.pages.ScavengeCandidate(maxPages, align)
	h.noteHold(t0)
	h.lock.Unlock()
	if !ok {
		return 0, nil
	}
	mode := h.cfg.Decommit
	if mode == mmap.DecommitStrict && ((base-h.base)%pages.ChunkBytes != 0 || n%pages.ChunkPages != 0) {
		mode = mmap.DecommitDontNeed
	}
	err := h.mapping.Decommit(base, n*pages.PageSize, mode)

	h.lock.Lock()
	t0 = time.Now()
	var ferr error
	if err == nil {
		ferr = h.pages.FreeScavenged(base, n)
	} else {
		// Not (wholly) released: its pages may still be resident, so they
		// go back unscavenged, counted as committed. A strict decommit
		// whose mprotect failed left them read/write, which is what an
		// unscavenged page must be.
		ferr = h.pages.Free(base, n)
	}
	h.noteHold(t0)
	h.lock.Unlock()
	if ferr != nil {
		panic(fmt.Sprintf("offheap: returning scavenged pages [%#x, +%d pages): %v", base, n, ferr))
	}
	if err != nil {
		h.scav.failures.Add(1)
		return 0, err
	}
	h.budgetMoved(-int64(n))
	bytes := n * pages.PageSize
	h.scav.released.Add(uint64(bytes))
	return bytes, nil
}

// noteHold records a heap-lock hold that began at t0 if it is the longest.
func (h *Heap) noteHold(t0 time.Time) {
	d := int64(time.Since(t0))
	for {
		m := h.scav.maxHold.Load()
		if d <= m || h.scav.maxHold.CompareAndSwap(m, d) {
			return
		}
	}
}

// scavHeap is the heap as package scavenge sees it.
type scavHeap struct{ h *Heap }

// Usage: bytes in spans, and free pages in the page allocator that are
// not released. Free pages in worker page caches are left out: the
// scavenger cannot reach them.
func (a scavHeap) Usage() (inUse, freeCommitted uint64) {
	h := a.h
	h.notePerP() // each step looks for a GOMAXPROCS shrink (pcache.go)
	h.lock.Lock()
	t0 := time.Now()
	ps := h.pages.Stats()
	h.noteHold(t0)
	h.lock.Unlock()
	return h.inusePages.Load() * pages.PageSize, uint64(ps.Free-ps.Scavenged) * pages.PageSize
}

// Release is one releaseRun, holding the gate that keeps Verify out.
func (a scavHeap) Release(max, align uint64) (uint64, error) {
	h := a.h
	h.scavGate.Lock()
	defer h.scavGate.Unlock()
	n, err := h.releaseRun(uintptr(max/pages.PageSize), uintptr(align/pages.PageSize))
	return uint64(n), err
}

// startScavenger starts the background worker unless ScavengeDelay < 0.
func (h *Heap) startScavenger() {
	if h.cfg.ScavengeDelay < 0 {
		return
	}
	h.bg = scavenge.New(scavHeap{h}, scavenge.Config{
		RetainBytes:    h.cfg.RetainBytes,
		RetainFraction: h.cfg.RetainFraction,
		Delay:          h.cfg.ScavengeDelay,
		MemoryLimit:    h.cfg.MemoryLimit,
	})
	h.bgStop, h.bgDone = make(chan struct{}), make(chan struct{})
	go func(s *scavenge.Scavenger, stop, done chan struct{}) {
		defer close(done)
		s.Run(stop)
	}(h.bg, h.bgStop, h.bgDone)
}

// stopScavenger stops the worker and waits until it has returned, so no
// release step runs after it: Close calls it before unmapping.
func (h *Heap) stopScavenger() {
	if h.bgStop == nil {
		return
	}
	close(h.bgStop)
	<-h.bgDone
}

// Scavenge returns every free page of the heap to the kernel now and
// reports how many bytes it released. Free pages held in worker page
// caches (at most 64 per Cache or P) are not touched. A failed madvise
// leaves its pages counted as not released, to be retried on a later call.
func (h *Heap) Scavenge() uint64 {
	if !h.enter() {
		return 0
	}
	defer h.leave()
	h.trimPerP() // spans of Ps gone since GOMAXPROCS shrank go back first
	return uint64(h.scavengeBytes(^uintptr(0)))
}

// scavengeBytes releases free pages, highest addresses first, until at
// least target bytes are released or none are left: whole huge pages
// first, then smaller aligned runs, then single pages. The lock is held
// only to take a run out of the page allocator and to put it back.
func (h *Heap) scavengeBytes(target uintptr) uintptr {
	var released uintptr
	for _, align := range [...]uintptr{hugePagePages, scavMinPages, 1} {
		for released < target {
			n, err := h.releaseRun(scavengeBatchPages, align)
			if err != nil {
				return released
			}
			if n == 0 {
				break
			}
			released += n
		}
	}
	return released
}
