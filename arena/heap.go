package arena

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/offheap/offheap/internal/addr"
	"github.com/offheap/offheap/mmap"
	"github.com/offheap/offheap/pages"
	"github.com/offheap/offheap/scavenge"
	"github.com/offheap/offheap/sizeclasses"
	"github.com/offheap/offheap/spans"
)

// Heap is an off-heap memory allocator over one reserved range of address
// space. All methods are safe for concurrent use, Close included: calls
// racing with Close finish or return ErrClosed (see Close).
type Heap struct {
	cfg     Config
	mapping *mmap.Mapping  // the reservation
	base    uintptr        // mapping.Base(), chunk aligned
	basePtr unsafe.Pointer // base as a pointer, for unsafe.Add
	limit   uintptr        // base + reservation size
	spans   *spans.Table   // span records and the page → span table

	metaReserved uintptr // address space of the metadata mappings (span table, page allocator)

	// Closing (closing.go has the protocol): closed is set once, by Close,
	// before it waits for the sections in flight; inflight counts the open
	// slow sections (and, in race builds, fast ones). closeMu serialises
	// Close calls and guards gone, which records what Close has unmapped,
	// so a Close whose munmap failed can be retried.
	closed   atomic.Bool
	inflight atomic.Int64
	closeMu  sync.Mutex
	gone     struct{ reservation, pages, spans bool }
	// slowByP counts the per-P allocation slow path's sections, sharded by
	// P (enterByP), so that goroutines on different Ps refilling their
	// caches do not all write one line. Close sums them with inflight.
	slowByP [slowShards]paddedCount

	// lock is the heap lock. It guards pages, growNext, pendingGrow and
	// noAccess, and nothing else: no system call, no zeroing and no loop
	// over objects happens while it is held. A checkedMutex: functions
	// named ...Locked assert it is held in invariants builds
	// (invariants_on.go).
	lock        checkedMutex
	pages       *pages.Allocator
	growNext    uintptr      // first never-grown address
	pendingGrow []grownRange // claimed chunks whose commit failed; retried first
	atClose     pageFigures  // the page figures when Close ran, for Stats
	final       bool         // atClose is set: pages may be unmapped, read atClose
	// noAccess: free pages that may still be PROT_NONE, or hold old data
	// though counted scavenged, whatever the decommit mode: quarantined
	// ranges whose mprotect back to read/write failed (guard.go), and
	// spans whose re-commit failed (releaseUncommitted). They sit in the
	// page allocator as free and scavenged; sysUsed re-commits the part a
	// new span takes, and allocSpanState clears it. noAccessN is its
	// length, read without the lock so allocation pays one atomic load
	// while it is empty, as it nearly always is.
	noAccess  []grownRange
	noAccessN atomic.Int64

	// Free pages held in worker page caches, and how many of those are
	// scavenged; updated with atomics when caches fill, serve and flush.
	cachedPages, cachedScav atomic.Int64

	inusePages atomic.Uint64 // pages in published (or being published) spans

	central [sizeclasses.NumClasses]central

	// uncheckedFree skips Free's interior-pointer and double-free checks.
	// Only benchmarks set it, to measure what the checks cost.
	uncheckedFree bool

	// Sampling (sample.go): set when Debug, GuardSampleRate or
	// ProfileRate asks the slow path to see chosen allocations.
	sampling bool
	// emptyWindows: every small allocation takes the slow path (Debug
	// checks poison; GuardSampleRate 1 guards each one), so a local free
	// must not put its slot back in the window.
	emptyWindows bool
	prof         profileStore // live profile samples (profile.go)
	guard        guardStore   // guarded objects and the quarantine (guard.go)

	// Regions: live count and bytes in their spans.
	regions, regionBytes atomic.Int64

	// Large objects: counted here, not per cache.
	largeMallocs, largeFrees, largeBytes atomic.Uint64
	classSpans                           [sizeclasses.NumClasses]atomic.Int64

	// statsMu guards caches and retired (cache registration, Close, Stats).
	statsMu sync.Mutex
	caches  map[uint32]*Cache // live caches, per-P ones included
	retired cacheCounters     // counters of closed caches
	nextID  uint32

	// Per-P caches serve Heap.Alloc/Free; see pcache.go. pcs points to the
	// table of them, indexed by P id: never written once published, it is
	// replaced whole (copy on write) under pcsMu when GOMAXPROCS changes,
	// and read with one atomic load. trimDue says the scavenger saw
	// GOMAXPROCS below the table's length. sharedCnt counts Heap.Free
	// calls made from a P beyond the table.
	pcs       atomic.Pointer[[]*Cache]
	pcsMu     sync.Mutex
	trimDue   atomic.Bool
	sharedCnt cacheCounters

	scav scavStats

	budget budgetLink // this heap's share of Config.Budget (budget.go)

	// The background scavenger (scavenger.go): nil when ScavengeDelay < 0.
	// scavGate is held by each of its release steps, by Heap.Scavenge and
	// by Verify, so neither Verify nor the end of Scavenge sees a run that
	// is out for release. Lock order: scavGate before h.lock.
	bg       *scavenge.Scavenger
	bgStop   chan struct{}
	bgDone   chan struct{}
	scavGate sync.Mutex
}

type grownRange struct{ base, npages uintptr }

// central is a size class's list of spans no cache owns.
// mu guards both lists and, for every span on them, Span.Allocated and the
// slot state bytes.
type central struct {
	mu checkedMutex // asserted free when a check panics (invariants builds)
	// partial holds spans with at least one free slot, by how full they
	// were when listed (central.go, partialBucket); full holds spans with
	// none.
	partial [partialBuckets]spans.List
	full    spans.List
	// cached counts the spans of the class owned by caches (in transit
	// included): taken by cacheSpan, given back by uncacheSpan. Atomic,
	// since a fresh span is handed out without the class lock; for
	// Stats.SpansCached.
	cached atomic.Int64
	_      [64]byte // keep neighbouring classes' locks on separate lines
}

// NewHeap reserves address space and returns an empty heap: cfg.Reserve
// bytes for the heap and about 31 % more for its metadata
// (Stats.MetadataReserved). Nothing is committed until the first
// allocation. If the kernel refuses (ulimit -v, for instance), heap and
// metadata are halved together down to a 64 MiB heap; every failure wraps
// ErrOutOfMemory, or ErrInvalidConfig for a bad cfg. Unless cfg.ScavengeDelay is
// negative it starts one goroutine, the background scavenger, which Close
// stops.
func NewHeap(cfg Config) (*Heap, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	r, err := reserveAll(uintptr(cfg.Reserve), cfg.Kernel)
	if err != nil {
		return nil, err
	}
	m := r.mapping
	cfg.Reserve = int64(m.Size())
	// Naming is best effort: the kernel may not support it.
	_ = m.SetName(cfg.Name)
	h := &Heap{cfg: cfg, mapping: m, base: m.Base(), limit: m.Base() + m.Size(), spans: r.spans, pages: r.pages}
	h.sampling = cfg.Debug || cfg.GuardSampleRate > 0 || cfg.ProfileRate > 0
	h.emptyWindows = cfg.Debug || cfg.GuardSampleRate == 1
	h.basePtr = addrPointer(h.base)
	h.growNext = h.base
	pagesMeta, _ := h.pages.MetadataBytes()
	h.metaReserved = h.spans.MetadataReserved() + pagesMeta
	for c := range h.central {
		for b := range h.central[c].partial {
			h.central[c].partial[b] = spans.NewList(spans.ListPartial)
		}
		h.central[c].full = spans.NewList(spans.ListFull)
	}
	h.caches = make(map[uint32]*Cache)
	pcs := make([]*Cache, runtime.GOMAXPROCS(0))
	for i := range pcs {
		pcs[i] = h.NewCache()
	}
	h.pcs.Store(&pcs)
	if cfg.HugePages {
		_ = m.HugePage(m.Base(), m.Size()) // a hint: best effort
	}
	h.budgetAttach()
	h.startScavenger()
	return h, nil
}

// reserved is what NewHeap maps: the heap's reservation and its metadata.
type reserved struct {
	mapping *mmap.Mapping
	spans   *spans.Table
	pages   *pages.Allocator
}

// reserveAll reserves a heap of size bytes, chunk aligned, with its
// metadata (span table, page allocator). If any part fails, typically with
// ENOMEM under ulimit -v, it undoes the others and halves the whole
// request, down to minReserve: the metadata's address space is about a
// third of the heap's, so halving the heap alone while the metadata still
// failed never helped. The final error wraps ErrOutOfMemory and the
// kernel's.
func reserveAll(size uintptr, k mmap.Kernel) (reserved, error) {
	want := size
	for {
		r, err := tryReserve(size, k)
		if err == nil {
			return r, nil
		}
		if size/2 < minReserve {
			return reserved{}, fmt.Errorf("%w: reserving %d bytes of heap and metadata (halved down to %d): %w",
				ErrOutOfMemory, want, size, err)
		}
		size = (size / 2) &^ (pages.ChunkBytes - 1)
	}
}

// tryReserve reserves the three parts at one size, or none of them.
func tryReserve(size uintptr, k mmap.Kernel) (reserved, error) {
	m, err := mmap.ReserveAligned(size, pages.ChunkBytes, k)
	if err != nil {
		return reserved{}, err
	}
	t, err := spans.NewTable(m.Base(), size/pages.PageSize, k)
	if err != nil {
		m.Release()
		return reserved{}, err
	}
	// The page allocator's metadata goes through the same kernel, so
	// Config.Kernel (a fault injector in tests) sees every mapping the heap
	// makes: the heap's own, the span table's and the page allocator's.
	pa, err := pages.New(m.Base(), size, k)
	if err != nil {
		t.Close()
		m.Release()
		return reserved{}, err
	}
	return reserved{m, t, pa}, nil
}

// addrPointer turns an address outside the Go heap into a pointer.
func addrPointer(a uintptr) unsafe.Pointer { return addr.Pointer(a) }

func (h *Heap) ptr(addr uintptr) unsafe.Pointer { return unsafe.Add(h.basePtr, addr-h.base) }

// Close returns every byte of the heap, and its metadata, to the kernel.
// Afterwards every method of the heap, its caches and its regions returns
// ErrClosed (Stats returns the figures as they were at Close).
//
// Close may run concurrently with any other call on the heap, its caches
// and regions: each such call either completes normally or returns
// ErrClosed, and nothing is unmapped until every call that saw the heap
// open has returned (closing.go describes how). Close stops the background
// scavenger and waits for it. What Close cannot guard is the caller's own
// use of heap memory: pointers returned by Alloc dangle once Close
// returns, and touching them faults, so stop using them (and the workers
// holding them) first.
//
// If an munmap fails, Close still releases the other parts and returns an
// error saying which part failed, wrapping the kernel's error; the heap
// stays closed and Close may be called again to release what remains. A
// Close after a successful one returns ErrClosed.
func (h *Heap) Close() error {
	h.closeMu.Lock()
	defer h.closeMu.Unlock()
	if h.gone.reservation && h.gone.pages && h.gone.spans {
		return ErrClosed
	}
	if !h.closed.Load() {
		h.closed.Store(true)
		h.stopScavenger() // waits for the worker: nothing may touch unmapped memory
		h.quiesce()
		// No call is in flight and none will start: take the last figures
		// under the lock (Stats reads them there), then unmap without it.
		h.lock.Lock()
		h.atClose = h.pageFiguresLocked()
		h.final = true
		h.lock.Unlock()
		h.budgetDetach()
	}
	return h.unmap()
}

// Reserved returns the size of the reservation in bytes.
func (h *Heap) Reserved() int { return int(h.limit - h.base) }
