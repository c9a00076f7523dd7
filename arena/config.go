package arena

import (
	"fmt"
	"time"

	"github.com/offheap/offheap/mmap"
	"github.com/offheap/offheap/pages"
	"github.com/offheap/offheap/scavenge"
)

const (
	// DefaultReserve is the address space a Heap reserves when Config.Reserve
	// is 0: large enough for real services, and free until used (the
	// reservation is PROT_NONE and MAP_NORESERVE). Its metadata reserves
	// about 20 GiB more (see Config.Reserve).
	DefaultReserve = 64 << 30

	// minReserve is the smallest reservation NewHeap falls back to when the
	// kernel refuses the requested one (it halves the request each time).
	minReserve = 64 << 20

	// DefaultName is the mapping name shown in /proc/PID/maps.
	DefaultName = "offheap"

	// scavengeBatchPages is how many pages Scavenge releases per madvise: a
	// chunk, so one call covers 4 MiB and the lock is retaken once per chunk.
	scavengeBatchPages = pages.ChunkPages

	// Scavenger defaults (see package scavenge).
	DefaultRetainBytes    = scavenge.DefaultRetainBytes    // Config.RetainBytes 0
	DefaultRetainFraction = scavenge.DefaultRetainFraction // Config.RetainFraction 0
	DefaultScavengeDelay  = scavenge.DefaultDelay          // Config.ScavengeDelay 0
)

// Decommit modes for Config.Decommit (see package mmap).
const (
	// DecommitDontNeed (the default): MADV_DONTNEED. RSS drops at once and
	// released pages read back as zero.
	DecommitDontNeed = mmap.DecommitDontNeed
	// DecommitFree: MADV_FREE. Cheaper to release, but RSS only drops
	// when the kernel is short of memory, and reused pages are cleared.
	DecommitFree = mmap.DecommitFree
	// DecommitStrict: MADV_DONTNEED, then PROT_NONE for released whole
	// chunks, so a stray access to them faults. For debugging; see
	// package scavenge for its mapping budget.
	DecommitStrict = mmap.DecommitStrict
)

// Config configures a Heap. The zero Config is a good default.
type Config struct {
	// MemoryLimit is a hard cap in bytes on committed memory: pages in
	// spans plus free pages not yet returned to the kernel. An allocation
	// that would pass it first returns free memory to the kernel; if that
	// is not enough it fails with ErrOutOfMemory. 0 means no limit.
	MemoryLimit int64

	// Budget, if set, is a memory budget this heap shares with the Go
	// runtime and any other heap given the same Budget (NewBudget). While
	// the Budget is open it keeps the Go runtime's memory limit
	// (debug.SetMemoryLimit, what GOMEMLIMIT sets) at the budget less the
	// heaps' committed memory, replacing any limit set before (Budget.Close
	// restores it); and an allocation that would take the heaps'
	// committed memory plus the Go runtime's memory (and headroom for the
	// Go heap, an eighth of it) past the budget first returns free memory
	// to the kernel, then fails with ErrOutOfMemory, as MemoryLimit does
	// (both apply: the tighter wins). GOGC still paces the GC below the
	// limit. If the Go runtime alone uses more than its share, the GC
	// works hard to get back under the limit and the heap refuses to grow;
	// it never takes memory the Go heap is using. With a Budget every span
	// takes its pages under the heap lock, as under MemoryLimit. See the
	// package documentation, "One budget for Go and offheap".
	Budget *Budget

	// Reserve is the address space to reserve for the heap, rounded up to
	// whole 4 MiB chunks; 0 means DefaultReserve. It bounds the heap: no
	// allocation grows it. The heap's metadata reserves about 31 % more
	// beside it (the span records are sized for the worst case, every page
	// a span of 8-byte objects), so the default takes about 84 GiB of
	// address space in all; Stats.Reserved and Stats.MetadataReserved
	// report the two. Reserved address space costs no memory and no
	// commit charge until the heap grows into it, but it counts against
	// ulimit -v: if the kernel refuses, NewHeap halves heap and metadata
	// together, down to a 64 MiB heap, before failing with ErrOutOfMemory.
	Reserve int64

	// Name labels the reservation in /proc/PID/maps as [anon:Name] where
	// the kernel supports it; "" means DefaultName.
	Name string

	// Kernel is the seam to the memory system calls; nil means the real
	// kernel. Tests pass an mmap.FaultInjector to fail chosen calls.
	Kernel mmap.Kernel

	// The scavenger keeps RetainBytes + RetainFraction × HeapInuse (the
	// goal, Stats.ScavengeGoal) of free memory committed and returns the
	// rest to the kernel once it has stayed free for ScavengeDelay
	// (package scavenge has the design).
	//
	// RetainBytes: 0 means DefaultRetainBytes (64 MiB); negative, none.
	RetainBytes int64
	// RetainFraction: 0 means DefaultRetainFraction (0.10); negative, none.
	RetainFraction float64
	// ScavengeDelay: 0 means DefaultScavengeDelay (1 s). Free memory that
	// stays free comes down to within 64 KiB of the goal (see
	// Stats.ScavengeFreeCommitted) between ScavengeDelay and 1.125 ×
	// ScavengeDelay after the frees, plus the release itself, paced to
	// take ScavengeDelay/4 or, when that needs more than a core, as long
	// as one core takes (~60 ms per GiB of whole huge pages, up to
	// ~0.5 s per GiB scattered in single 8 KiB pages). The size of the
	// free runs does not matter: single pages between live spans are
	// released too. Not covered: free pages in worker page caches (at most
	// 64 per P or Cache) and free slots in spans that hold live objects
	// (those are HeapInuse). Negative turns the background scavenger off:
	// no goroutine is started, and memory goes back only through
	// Heap.Scavenge and the MemoryLimit path.
	ScavengeDelay time.Duration
	// Decommit says how memory goes back to the kernel: DecommitDontNeed
	// (the zero value and default), DecommitFree or DecommitStrict.
	Decommit mmap.DecommitMode
	// HugePages asks for transparent huge pages on the whole reservation
	// (MADV_HUGEPAGE, best effort). The scavenger releases whole 2 MiB
	// pages first either way.
	HugePages bool

	// Debug turns on checks that cost time: a freed small object is
	// filled with a poison byte (0xdb) and checked when its slot is handed
	// out again, so a write after free panics naming the address, class
	// and span (an ordinary, recoverable panic; the slot is retired, see
	// the package doc); freed spans are made PROT_NONE and quarantined before
	// their pages are reused, so touching them faults. Allocation and free
	// are slower; with Debug off the fast path pays nothing.
	Debug bool

	// GuardSampleRate guards one allocation in N (on average; 1 guards
	// every one): the object is placed alone at the end of its own pages,
	// followed by a PROT_NONE page, and its pages become PROT_NONE when it
	// is freed, so overflows and uses after free fault. At most 1024
	// guarded objects are live at once. 0 turns it off.
	GuardSampleRate int

	// ProfileRate samples about one allocation per ProfileRate bytes and
	// records its call stack until it is freed (Heap.ProfileRecords;
	// arenahttp serves a pprof heap profile). 0 turns it off;
	// DefaultProfileRate is a good value to turn it on with.
	ProfileRate int
}

// DefaultProfileRate is the sampling rate the Go runtime uses for its own
// heap profile (runtime.MemProfileRate): one sample per 512 KiB allocated.
const DefaultProfileRate = 512 << 10

func (c *Config) normalize() error {
	if c.MemoryLimit < 0 {
		return fmt.Errorf("%w: MemoryLimit %d is negative", ErrInvalidConfig, c.MemoryLimit)
	}
	if err := c.checkBudget(); err != nil {
		return err
	}
	if c.Reserve < 0 {
		return fmt.Errorf("%w: Reserve %d is negative", ErrInvalidConfig, c.Reserve)
	}
	if c.Decommit < DecommitDontNeed || c.Decommit > DecommitStrict {
		return fmt.Errorf("%w: unknown Decommit mode %d", ErrInvalidConfig, c.Decommit)
	}
	if c.RetainFraction != c.RetainFraction || c.RetainFraction > 100 {
		return fmt.Errorf("%w: RetainFraction %v out of range", ErrInvalidConfig, c.RetainFraction)
	}
	if c.GuardSampleRate < 0 || c.ProfileRate < 0 {
		return fmt.Errorf("%w: GuardSampleRate %d / ProfileRate %d is negative", ErrInvalidConfig, c.GuardSampleRate, c.ProfileRate)
	}
	if c.Reserve == 0 {
		c.Reserve = DefaultReserve
	}
	c.Reserve = (c.Reserve + pages.ChunkBytes - 1) &^ (pages.ChunkBytes - 1)
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.Kernel == nil {
		c.Kernel = mmap.Real()
	}
	return nil
}
