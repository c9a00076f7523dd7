package bench

import "unsafe"

// Allocator is what a workload allocates through: one per worker
// goroutine, from Pool.Worker. Alloc returns n bytes (n ≥ 1) the
// workload may write; Free gives them back. An allocator that cannot
// serve a request panics: a benchmark has no use for a half-run.
//
// Workloads call these through the interface, so the compiler cannot see
// which allocator runs and cannot drop or stack-allocate a Go make.
type Allocator interface {
	Alloc(n int) unsafe.Pointer
	Free(p unsafe.Pointer)
}

// Resetter is implemented by allocators that free only in bulk (Go's
// arenas): glibc-simple calls Reset after freeing each batch.
type Resetter interface{ Reset() }

// Pool is one allocator set up for one run: a fresh offheap Heap, or the
// Go heap. Worker is called once for each worker goroutine, from that
// goroutine, and Done when the goroutine stops allocating; Close ends the
// run and reports anything left behind (offheap: live objects).
type Pool interface {
	Worker() Allocator
	Done(Allocator)
	Close() error
}

// Provider names an allocator and opens a Pool of it for each run.
type Provider struct {
	Name string
	// BulkOnly: frees individual objects as no-ops and memory only in
	// bulk, so it runs only workloads that free in batches (Workload.Bulk).
	BulkOnly bool
	Open     func() (Pool, error)
}

// Allocator names, as -allocs takes them.
const (
	NameHeap    = "offheap-heap"
	NameCache   = "offheap-cache"
	NameGo      = "go"
	NameGoArena = "go-arena"
	NameCgo     = "cgo"
)

// Providers lists the allocators built into this binary: offheap's Heap
// and Cache and the Go heap always, cgo calloc/free when built with cgo
// (alloc_cgo.go), Go arenas when built with GOEXPERIMENT=arenas
// (alloc_goarena.go).
func Providers() []Provider {
	ps := []Provider{heapProvider(), cacheProvider(), goProvider()}
	ps = append(ps, cgoProviders()...)
	return append(ps, arenaProviders()...)
}

// touch writes the first and the last byte of a fresh object, as the C
// driver does: every allocator pays for bringing the object's lines into
// the cache, and none is measured on memory it never touches.
func touch(p unsafe.Pointer, n int) {
	*(*byte)(p) = byte(n)
	*(*byte)(unsafe.Add(p, n-1)) = byte(n)
}
