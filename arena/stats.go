package arena

import (
	"sync/atomic"
	"time"

	"github.com/offheap/offheap/pages"
	"github.com/offheap/offheap/sizeclasses"
)

// Stats is a snapshot of a heap's figures. Byte counts are in bytes.
//
// When no allocation or free runs concurrently with Stats (for example
// after the workers have finished), the snapshot is exact and satisfies
// HeapSys == HeapInuse + HeapIdle, HeapReleased <= HeapIdle, and HeapAlloc
// == the sum of the class sizes of live objects. Under concurrent traffic
// each figure is read atomically but the figures may be a few operations
// apart; counters never go backwards and HeapObjects never goes negative.
type Stats struct {
	Reserved     uint64 // address space reserved for the heap itself (Config.Reserve after rounding and halving); metadata not included
	HeapSys      uint64 // grown: made readable and writable for spans
	HeapInuse    uint64 // in spans (including free slots of small spans)
	HeapIdle     uint64 // grown and not in spans
	HeapReleased uint64 // idle and returned to the kernel
	HeapAlloc    uint64 // live objects, by class size (large: whole pages)
	HeapObjects  uint64 // live objects
	Mallocs      uint64 // allocations ever
	Frees        uint64 // frees ever

	// Metadata is the off-heap metadata touched and not given back: span
	// records (the scavenger gives back the pages that only records of
	// freed spans cover), the page → span map and the page bitmaps.
	Metadata uint64

	// MetadataReserved is the address space reserved for the heap's
	// metadata (span records, page → span map, page allocator), beside
	// Reserved: about 31 % of it, so Reserved + MetadataReserved is what
	// the heap adds to the process's VmSize (and counts against ulimit
	// -v). It is committed only as the heap grows; Metadata tells how much
	// of it is in use.
	MetadataReserved uint64

	LargeObjects uint64 // live objects larger than 32 KiB
	LargeAlloc   uint64 // their bytes (whole pages)

	GuardedObjects     uint64 // live guarded objects (Config.GuardSampleRate)
	GuardedAlloc       uint64 // their bytes (whole pages, guard page included)
	GuardedQuarantined uint64 // freed guarded objects and debug-mode spans still PROT_NONE
	ProfileSamples     uint64 // live profile samples (Config.ProfileRate)

	Regions     uint64 // live regions
	RegionInuse uint64 // bytes in spans held by regions (in HeapInuse, not in HeapAlloc)

	LargestFreeRun uint64 // longest run of free grown pages, in bytes

	MemoryLimit uint64 // Config.MemoryLimit, 0 for none
	Committed   uint64 // bytes counted against the limit: HeapSys - HeapReleased

	// Config.Budget's figures (all 0 without one): the budget, the Go
	// memory limit it set last, the Go runtime's memory as last read, and
	// the committed memory of all the heaps sharing it (Budget.Stats has
	// more).
	Budget, BudgetGoLimit, BudgetGoMemory, BudgetCommitted uint64

	ScavengeReleased    uint64 // bytes ever returned to the kernel by scavenging
	ScavengeFailures    uint64 // madvise calls that failed (their pages stay committed)
	ScavengeRecommitted uint64 // bytes of spans built on pages with no physical memory: released earlier, or freshly grown (each page faults in on first touch)
	ScavengeGoal        uint64 // free bytes the scavenger keeps committed now (0: no worker)

	// The background scavenger (all 0 when Config.ScavengeDelay < 0).
	ScavengeCycles    uint64        // cycles finished: from memory due for release to none
	ScavengeTime      time.Duration // wall time spent in its release steps
	ScavengeLastCycle time.Duration // duration of the last finished cycle, pacing sleeps included

	// ScavengeMaxLockHold is the longest heap-lock hold measured in a
	// release step (any path: worker, Scavenge, MemoryLimit).
	ScavengeMaxLockHold time.Duration

	// ScavengeReleaseCalls counts the madvise (release) calls made by
	// scavenging, every path; ScavengeReleased / ScavengeReleaseCalls is
	// the mean release size, small on a fragmented heap (one call can
	// cover several free runs only when released pages lie between them).
	ScavengeReleaseCalls uint64
	// ScavengeFreeCommitted is the free memory the scavenger can release
	// and has not: free pages of the page allocator still backed by
	// memory. The background scavenger brings it down to ScavengeGoal
	// (package scavenge states the delay). Free pages held by worker page
	// caches (at most 64 per P or Cache) are not in it.
	ScavengeFreeCommitted uint64

	// SpanOccupancy counts the small-object spans on the central lists
	// (spans no cache owns) by how full they are, all classes together:
	// index 0..3 are the partial spans whose live objects were, when the
	// span was last listed, under 25 %, 25-50 %, 50-75 % and at least
	// 75 % of its slots (the bucket caches refill from fullest first);
	// index 4 is the full spans (no free slot when listed). A span is
	// listed when a cache hands it back; a full one is moved to a
	// partial bucket once an eighth of its slots (at least 4, or half of
	// a smaller span) have been freed remotely, the frees before that
	// waiting uncollected (central.go, relistAt). Other remote frees into
	// a listed span take no lock and do not move it, so a span may be
	// emptier than its bucket says until a cache takes it (or its last
	// object is freed and the span with it). Index it with the Occupancy*
	// constants.
	SpanOccupancy [SpanOccupancyBuckets]uint64

	// SpansCached counts the small-object spans owned by caches (per-P
	// caches and Caches, in transit between a cache and the central lists
	// included): their fill is private to the owner, so they are in no
	// SpanOccupancy bucket. SpansCached plus the sum of SpanOccupancy is
	// the small-object spans in use (the Classes' Spans) when no
	// allocation or free runs concurrently.
	SpansCached uint64

	// SparseSpanBytes is the bytes of the spans in SpanOccupancy's
	// under-25 % bucket: memory held by nearly empty spans that caches
	// will refill last (a sign of fragmentation after mass frees).
	SparseSpanBytes uint64

	// Classes has one entry per size class, index = class; entry 0 is unused.
	Classes []ClassStats
}

// SpanOccupancyBuckets is the number of entries of Stats.SpanOccupancy
// (and ClassStats.SpanOccupancy): four partial buckets and the full one.
const SpanOccupancyBuckets = partialBuckets + 1

// Indexes into Stats.SpanOccupancy.
const (
	OccupancyUnder25 = 0              // partial, live objects < 25 % of slots when listed
	Occupancy25to50  = 1              // partial, 25 % <= live < 50 %
	Occupancy50to75  = 2              // partial, 50 % <= live < 75 %
	Occupancy75Plus  = 3              // partial, live >= 75 % (at least one slot free)
	OccupancyFull    = partialBuckets // full: no free slot when listed, fewer than relistAt remote frees since (partialBuckets is 4: quarters)
)

// ClassStats describes one size class.
type ClassStats struct {
	Size      uint64 // object size
	Objects   uint64 // live objects
	Spans     uint64 // spans of this class in use
	SpanBytes uint64 // bytes in one span of this class
	Mallocs   uint64
	Frees     uint64

	// SpanOccupancy and SpansCached split Spans as Stats' fields of the
	// same names do, for this class alone.
	SpanOccupancy [SpanOccupancyBuckets]uint64
	SpansCached   uint64
}

// Stats returns a snapshot of the heap's figures. It holds the heap lock
// only to read the page allocator's counts. After Close it returns the
// figures as they were at Close.
func (h *Heap) Stats() Stats {
	var st Stats
	st.Reserved = uint64(h.limit - h.base)
	st.MetadataReserved = uint64(h.metaReserved)
	st.MemoryLimit = uint64(h.cfg.MemoryLimit)
	h.budgetStats(&st)
	st.Classes = make([]ClassStats, sizeclasses.NumClasses)

	// Frees first, then mallocs: every free read has its malloc counted,
	// so live counts cannot go negative under concurrent traffic.
	frees, mallocs := h.sumCounters()
	largeFrees := h.largeFrees.Load()
	largeMallocs := h.largeMallocs.Load()
	for cl := 1; cl < sizeclasses.NumClasses; cl++ {
		cs := &st.Classes[cl]
		cs.Size = uint64(sizeclasses.Size(uint8(cl)))
		cs.SpanBytes = uint64(sizeclasses.Pages(uint8(cl)) * pages.PageSize)
		cs.Mallocs, cs.Frees = mallocs[cl], frees[cl]
		cs.Objects = cs.Mallocs - cs.Frees
		cs.Spans = uint64(max(h.classSpans[cl].Load(), 0))
		h.occupancy(uint8(cl), cs)
		for b, n := range cs.SpanOccupancy {
			st.SpanOccupancy[b] += n
		}
		st.SpansCached += cs.SpansCached
		st.SparseSpanBytes += cs.SpanOccupancy[OccupancyUnder25] * cs.SpanBytes
		st.HeapObjects += cs.Objects
		st.HeapAlloc += cs.Objects * cs.Size
		st.Mallocs += cs.Mallocs
		st.Frees += cs.Frees
	}
	st.LargeObjects = largeMallocs - largeFrees
	st.LargeAlloc = h.largeBytes.Load()
	st.HeapObjects += st.LargeObjects
	st.HeapAlloc += st.LargeAlloc
	st.Mallocs += largeMallocs
	st.Frees += largeFrees

	h.guard.mu.Lock()
	st.GuardedObjects = h.guard.mallocs - h.guard.frees
	st.GuardedAlloc = h.guard.liveBytes
	st.GuardedQuarantined = uint64(len(h.guard.quarantine))
	st.Mallocs += h.guard.mallocs
	st.Frees += h.guard.frees
	h.guard.mu.Unlock()
	st.HeapObjects += st.GuardedObjects
	st.HeapAlloc += st.GuardedAlloc
	h.prof.mu.Lock()
	st.ProfileSamples = uint64(len(h.prof.recs))
	h.prof.mu.Unlock()

	h.lock.Lock()
	pf := h.atClose
	if !h.final {
		pf = h.pageFiguresLocked()
	}
	h.lock.Unlock()
	st.HeapSys, st.HeapInuse, st.HeapIdle = pf.sys, pf.inuse, pf.sys-pf.inuse
	st.HeapReleased, st.Metadata, st.LargestFreeRun = pf.released, pf.metadata, pf.largestFree
	st.Regions = uint64(max(h.regions.Load(), 0))
	st.RegionInuse = uint64(max(h.regionBytes.Load(), 0))
	st.Committed = st.HeapSys - st.HeapReleased
	st.ScavengeReleased = h.scav.released.Load()
	st.ScavengeFailures = h.scav.failures.Load()
	st.ScavengeRecommitted = h.scav.recommitted.Load()
	st.ScavengeMaxLockHold = time.Duration(h.scav.maxHold.Load())
	st.ScavengeReleaseCalls = h.scav.calls.Load()
	st.ScavengeFreeCommitted = pf.freeCommitted
	if h.bg != nil {
		bs := h.bg.Stats()
		st.ScavengeCycles = bs.Cycles
		st.ScavengeTime = bs.Busy
		st.ScavengeLastCycle = bs.LastCycle
		st.ScavengeGoal = h.bg.Goal(st.HeapInuse)
	}
	return st
}

// occupancy fills cs's span occupancy figures from class cl's central
// lists, read under the class lock (list lengths: no walk).
func (h *Heap) occupancy(cl uint8, cs *ClassStats) {
	c := &h.central[cl]
	c.mu.Lock()
	for b := range c.partial {
		cs.SpanOccupancy[b] = uint64(c.partial[b].Len())
	}
	cs.SpanOccupancy[OccupancyFull] = uint64(c.full.Len())
	c.mu.Unlock()
	cs.SpansCached = uint64(max(c.cached.Load(), 0))
}

// pageFigures are the Stats figures read from the page allocator, kept at
// Close so Stats can still report them.
type pageFigures struct {
	sys, inuse, released, metadata, largestFree uint64
	freeCommitted                               uint64 // free, unreleased pages of the page allocator
}

// pageFiguresLocked reads the page figures. Caller holds h.lock, and
// h.final is not set (the page allocator is still mapped).
func (h *Heap) pageFiguresLocked() pageFigures {
	h.lock.assertHeld("pageFiguresLocked")
	ps := h.pages.Stats()
	_, meta := h.pages.MetadataBytes()
	return pageFigures{
		sys:         uint64(ps.Grown * pages.PageSize),
		inuse:       h.inusePages.Load() * pages.PageSize,
		released:    uint64((ps.Scavenged + uintptr(h.cachedScav.Load())) * pages.PageSize),
		metadata:    uint64(meta) + h.spans.MetadataBytes(ps.Grown),
		largestFree: uint64(ps.LongestFree * pages.PageSize),

		freeCommitted: uint64((ps.Free - ps.Scavenged) * pages.PageSize),
	}
}

// sumCounters adds up every cache's counters: all frees, then all mallocs.
func (h *Heap) sumCounters() (frees, mallocs [sizeclasses.NumClasses]uint64) {
	h.statsMu.Lock()
	defer h.statsMu.Unlock()
	all := make([]*cacheCounters, 0, len(h.caches)+2)
	all = append(all, &h.retired, &h.sharedCnt)
	for _, c := range h.caches {
		all = append(all, c.cnt)
	}
	for _, c := range all {
		for cl := range frees {
			frees[cl] += atomic.LoadUint64(&c.frees[cl])
		}
	}
	for _, c := range all {
		for cl := range mallocs {
			mallocs[cl] += atomic.LoadUint64(&c.mallocs[cl])
		}
	}
	return frees, mallocs
}
