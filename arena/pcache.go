package arena

import (
	"sync"
	"unsafe"

	"github.com/offheap/offheap/pages"
	"github.com/offheap/offheap/sizeclasses"
	"github.com/offheap/offheap/spans"
)

// Heap.Alloc and Heap.Free without an explicit Cache go through one Cache
// per P (the runtime's processor slots, GOMAXPROCS of them). A goroutine
// pins itself to its P with procPin, which keeps it from being preempted or
// moved, uses that P's cache, and unpins. Nothing that can block or enter
// the kernel runs while pinned: refills that need a lock or a new span
// happen unpinned, and the span is installed after pinning again.
//
// Why per-P and not sharded caches behind mutexes: an uncontended
// sync.Mutex costs two atomic read-modify-writes, and one atomic add
// measured 4.7 ns on the development machine against 0.3 ns for a plain
// byte store, so a lock/unlock pair around each operation would cost about
// as much as the whole Cache fast path (about 7 ns per operation); pinning
// costs two plain increments of the M's lock count. Measured: a Heap pair
// is 1.14-1.28x a Cache pair (BenchmarkPairRatio), and Heap.Alloc/Free
// scales 15.7x on 16 cores (BenchmarkHeapParallel). The runtime keeps
// procPin and procUnpin reachable by linkname for existing users
// (golang/go#67401); pin_linkname.go declares them, and the build tag
// offheap_nolinkname does without them (pin_nolinkname.go, doc.go).
//
// If GOMAXPROCS grows after NewHeap, goroutines on the new Ps share one
// spare Cache behind a mutex: correct, slower.

// spare serves Ps beyond the per-P caches. mu guards cache.
type spare struct {
	mu    sync.Mutex
	cache *Cache
}

// Alloc returns size bytes of zeroed memory from the heap, aligned as
// Cache.Alloc. Safe for concurrent use.
func (h *Heap) Alloc(size int) (unsafe.Pointer, error) {
	if uint(size) > sizeclasses.MaxSmallSize {
		return h.allocLargeEntered(size, nil)
	}
	cl := sizeclasses.SizeToClass(uintptr(size))
	pid, ok := h.openFast()
	if !ok {
		h.closeFast()
		return nil, ErrClosed
	}
	if c := h.fastP(pid); c != nil {
		if cc := &c.cls[cl]; cc.free != 0 {
			p := c.take(cc, cl)
			h.fastPDone(c)
			h.closeFast()
			return p, nil
		}
		h.fastPDone(c)
	}
	h.closeFast()
	return h.allocSmallSlow(cl, size)
}

// allocLargeEntered is allocLarge in a slow section (closing.go), for the
// public entry points.
func (h *Heap) allocLargeEntered(size int, pc *pages.Cache) (unsafe.Pointer, error) {
	if !h.enter() {
		return nil, ErrClosed
	}
	defer h.leave()
	return h.allocLarge(size, pc)
}

// allocSmallSlow refills the current P's cache of class cl, and serves
// sampled allocations. The parts that may block or allocate on the Go heap
// (class lock, heap lock, system calls, recording a stack) run with the P
// released; a fresh span is installed in whichever P the goroutine holds
// afterwards.
//
// It is a slow section of its own (closing.go).
func (h *Heap) allocSmallSlow(cl uint8, size int) (unsafe.Pointer, error) {
	if !h.enter() {
		return nil, ErrClosed
	}
	defer h.leave()
	var fresh *spans.Span // a span fetched unpinned, to install
	noGuard := false
	for {
		c := h.acquireP()
		if c == nil {
			if fresh != nil {
				h.uncacheSpan(fresh)
			}
			return h.allocSpare(cl, size)
		}
		var old *spans.Span
		if fresh != nil {
			// Another goroutine on this P may have installed a span
			// meanwhile; the fresh one replaces it.
			old = c.detach(cl)
			c.install(cl, fresh)
			fresh = nil
		}
		p, act, full, sampled := c.slowStep(cl, noGuard)
		h.releaseP(c)
		for _, s := range []*spans.Span{old, full} {
			if s != nil {
				h.uncacheSpan(s)
			}
		}
		switch act {
		case actDone:
			if sampled {
				h.recordSample(p, cl, 0)
			}
			return p, nil
		case actGuard:
			if p, ok, err := h.allocGuarded(size); ok || err != nil {
				return p, err
			}
			noGuard = true // no guarded slot free: an ordinary allocation
			continue
		}
		s, err := h.cacheSpan(cl, nil)
		if err != nil {
			return nil, err
		}
		fresh = s
	}
}

// allocSpare allocates through the shared spare cache.
func (h *Heap) allocSpare(cl uint8, size int) (unsafe.Pointer, error) {
	h.spare.mu.Lock()
	defer h.spare.mu.Unlock()
	if h.spare.cache == nil {
		h.spare.cache = h.newCache(false)
	}
	c := h.spare.cache
	if cc := &c.cls[cl]; cc.free != 0 {
		return c.take(cc, cl), nil
	}
	return c.allocSlow(cl, size)
}

// Free frees an object allocated from this heap, through any Cache or the
// Heap. Safe for concurrent use. Errors as Cache.Free.
func (h *Heap) Free(p unsafe.Pointer) error {
	pid, ok := h.openFast()
	if !ok {
		h.closeFast()
		return ErrClosed
	}
	return h.free(nil, pid, p, h.spans.Lookup(uintptr(p)))
}
