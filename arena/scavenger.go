package arena

import (
	"cmp"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/offheap/offheap/mmap"
	"github.com/offheap/offheap/pages"
	"github.com/offheap/offheap/scavenge"
)

// The heap's side of scavenging: the release steps (releaseRun for one
// aligned run, releaseRuns for runs of any length), the adapter the
// background policy (package scavenge) drives, and the worker goroutine's
// start and stop.

const (
	// hugePagePages is a 2 MiB transparent huge page in heap pages.
	hugePagePages = scavenge.HugePage / pages.PageSize
	// scavStepRuns is the most runs (so, madvise calls) one releaseRuns
	// step releases: 64 single pages cost ~64-200 µs of madvise (see
	// package scavenge), short enough for a step, long enough that the
	// step's three lock holds and sampling are amortised.
	scavStepRuns = 64
	// scavMaxGapPages: two runs of a chunk separated by at most this many
	// free pages that are already released are released by one madvise
	// over the whole stretch; the released pages in it cost ~0.3 ns each
	// in the kernel, a call a microsecond or more. Off under a
	// MemoryLimit or a Budget, where the gap's pages would count as
	// committed for the step's duration.
	scavMaxGapPages = 64
)

// scavStats are the scavenger's counters.
type scavStats struct {
	released    atomic.Uint64 // bytes released, every path
	calls       atomic.Uint64 // madvise (release) calls, every path
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
	h.scav.calls.Add(1)

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

// releaseRuns is one batched release step for runs of any length: under
// the lock, take the free committed pages of the highest chunks (at most
// maxPages pages in at most scavStepRuns runs, single pages included; see
// pages.TakeScavengeRuns), marked in use so nobody allocates them; unlock;
// release them in address order, one madvise per stretch of adjacent
// runs; lock again to give them back as released, or the refused ones as
// plain free pages to be retried later. No lock is held across a system
// call, and each lock hold updates the page summaries once per chunk, not
// once per run. buf is reused for the runs; it returns the bytes newly
// released and buf (possibly grown).
//
// In strict mode only a run that is a whole chunk becomes PROT_NONE;
// runs are not merged across chunks there, so that stays true.
func (h *Heap) releaseRuns(maxPages uintptr, buf []pages.Run) (uintptr, []pages.Run, error) {
	gap := uintptr(scavMaxGapPages)
	if h.cfg.MemoryLimit != 0 || h.cfg.Budget != nil {
		gap = 0
	}
	if cap(buf) < scavStepRuns {
		buf = make([]pages.Run, 0, scavStepRuns) // no allocation under the lock
	}
	h.lock.Lock()
	t0 := time.Now()
	runs, fresh := h.pages.TakeScavengeRuns(maxPages, scavStepRuns, gap, buf[:0])
	h.noteHold(t0)
	h.lock.Unlock()
	if len(runs) == 0 {
		return 0, runs, nil
	}
	slices.SortFunc(runs, func(a, b pages.Run) int { return cmp.Compare(a.Base, b.Base) })
	strict := h.cfg.Decommit == mmap.DecommitStrict
	var failed []pages.Run // allocated only when the kernel refuses
	var failedFresh uintptr
	var err error
	nOK, calls, refused := 0, 0, 0
	for i := 0; i < len(runs); {
		// A stretch of adjacent runs, [i, j).
		base := runs[i].Base
		end := base + runs[i].Pages*pages.PageSize
		j := i + 1
		for ; !strict && j < len(runs) && runs[j].Base == end; j++ {
			end += runs[j].Pages * pages.PageSize
		}
		mode := h.cfg.Decommit
		if strict && ((base-h.base)%pages.ChunkBytes != 0 || end-base != pages.ChunkBytes) {
			mode = mmap.DecommitDontNeed
		}
		calls++
		if e := h.mapping.Decommit(base, end-base, mode); e != nil {
			// Not (wholly) released: its pages may still be resident, so
			// they go back unreleased, counted as committed.
			err = e
			refused++
			for _, r := range runs[i:j] {
				failed = append(failed, r)
				failedFresh += r.Fresh
			}
		} else {
			nOK += copy(runs[nOK:], runs[i:j])
		}
		i = j
	}

	h.lock.Lock()
	t0 = time.Now()
	ferr := h.pages.ReturnRuns(runs[:nOK], true)
	if ferr == nil {
		ferr = h.pages.ReturnRuns(failed, false)
	}
	h.noteHold(t0)
	h.lock.Unlock()
	if ferr != nil {
		panic(fmt.Sprintf("offheap: returning %d released runs from %#x: %v", len(runs), runs[0].Base, ferr))
	}
	h.scav.calls.Add(uint64(calls))
	if refused > 0 {
		h.scav.failures.Add(uint64(refused))
	}
	h.budgetMoved(-int64(fresh - failedFresh))
	bytes := (fresh - failedFresh) * pages.PageSize
	h.scav.released.Add(uint64(bytes))
	return bytes, runs, err
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

// scavHeap is the heap as package scavenge sees it. Its methods are
// called by the worker goroutine alone (one at a time), which owns buf.
type scavHeap struct {
	h   *Heap
	buf []pages.Run // runs of a releaseRuns step, reused
}

// Usage: bytes in spans, and free pages in the page allocator that are
// not released. Free pages in worker page caches are left out: the
// scavenger cannot reach them.
func (a *scavHeap) Usage() (inUse, freeCommitted uint64) {
	h := a.h
	h.notePerP() // each step looks for a GOMAXPROCS shrink (pcache.go)
	h.lock.Lock()
	t0 := time.Now()
	ps := h.pages.Stats()
	h.noteHold(t0)
	h.lock.Unlock()
	return h.inusePages.Load() * pages.PageSize, uint64(ps.Free-ps.Scavenged) * pages.PageSize
}

// Release is one release step, holding the gate that keeps Verify out:
// one run of whole huge pages (align = HugePage), or runs of any length
// (align = 0).
func (a *scavHeap) Release(max, align uint64) (uint64, error) {
	h := a.h
	h.scavGate.Lock()
	defer h.scavGate.Unlock()
	maxPages := uintptr(max / pages.PageSize)
	var n uintptr
	var err error
	if align >= scavenge.HugePage {
		n, err = h.releaseRun(maxPages, uintptr(align/pages.PageSize))
	} else {
		n, a.buf, err = h.releaseRuns(maxPages, a.buf)
	}
	if n > 0 {
		h.releaseRecords(uintptr(max))
	}
	return uint64(n), err
}

// startScavenger starts the background worker unless ScavengeDelay < 0.
func (h *Heap) startScavenger() {
	if h.cfg.ScavengeDelay < 0 {
		return
	}
	h.bg = scavenge.New(&scavHeap{h: h}, scavenge.Config{
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
// reports how many bytes of heap pages it released. Free pages held in
// worker page caches (at most 64 per Cache or P) are not touched. It also
// gives back the span metadata of freed spans (Stats.Metadata falls), not
// counted in the result. It waits for a release step of the background
// scavenger in flight. A failed madvise leaves its pages counted as not
// released, to be retried on a later call.
func (h *Heap) Scavenge() uint64 {
	if !h.enter() {
		return 0
	}
	defer h.leave()
	h.trimPerP() // spans of Ps gone since GOMAXPROCS shrank go back first
	// The gate waits out a background step that has runs out for release
	// (taken from the page allocator, madvise not yet done) and keeps the
	// worker from taking more while we run: when Scavenge returns, no free
	// page outside the page caches is left committed.
	h.scavGate.Lock()
	defer h.scavGate.Unlock()
	n := h.scavengeBytes(^uintptr(0))
	h.releaseRecords(^uintptr(0))
	return uint64(n)
}

// releaseRecords gives back up to max bytes of span-record pages that
// only records of freed spans overlap (spans.Table.ReleasePooled: after a
// mass delete, tens of MiB for a heap of a GiB). It runs in release
// steps that released heap pages, which is when spans have been freed,
// and in Scavenge. The bytes show in Stats.Metadata, not in the heap's
// released figures; a refused madvise counts in ScavengeFailures and
// loses nothing (the records stay resident, to be tried again).
func (h *Heap) releaseRecords(max uintptr) {
	_, err := h.spans.ReleasePooled(max)
	if err != nil {
		h.scav.failures.Add(1)
	}
}

// scavengeBytes releases free pages, highest addresses first, until at
// least target bytes are released or none are left: whole huge pages
// first, then runs of any length down to single pages, batched. The lock
// is held only to take runs out of the page allocator and to put them back.
func (h *Heap) scavengeBytes(target uintptr) uintptr {
	var released uintptr
	for released < target {
		n, err := h.releaseRun(scavengeBatchPages, hugePagePages)
		if err != nil {
			return released
		}
		if n == 0 {
			break
		}
		released += n
	}
	var buf []pages.Run
	for released < target {
		left := target - released
		want := left / pages.PageSize
		if left%pages.PageSize != 0 {
			want++
		}
		want = min(want, scavengeBatchPages)
		n, runs, err := h.releaseRuns(want, buf)
		buf = runs
		released += n
		if err != nil || len(runs) == 0 {
			return released
		}
	}
	return released
}
