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

// spare serves Ps beyond the per-P caches. mu guards cache and is held
// while it is used, as a P's cache is pinned: only for slowStep's
// non-blocking part, never across a system call or a panic.
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
// sampled allocations. The parts that may block, allocate on the Go heap
// or panic (class lock, heap lock, system calls, recording a stack, a
// failed debug check) run with the P released; a fresh span is installed
// in whichever P the goroutine holds afterwards. Past the per-P caches the
// spare cache is used the same way, its mutex held only as a P would be.
func (h *Heap) allocSmallSlow(cl uint8, size int) (unsafe.Pointer, error) {
	return h.allocShared(cl, size, false)
}

// allocShared is allocSmallSlow; spareOnly uses the spare cache whatever
// the P (for tests of the spare path, which otherwise needs GOMAXPROCS
// raised after NewHeap and a goroutine that happens to run on a new P).
//
// It is a slow section of its own (closing.go).
func (h *Heap) allocShared(cl uint8, size int, spareOnly bool) (unsafe.Pointer, error) {
	if !h.enter() {
		return nil, ErrClosed
	}
	defer h.leave()
	var fresh *spans.Span // a span fetched unpinned, to install
	noGuard := false
	var f checkFault
	for {
		c := h.acquireShared(spareOnly)
		var old *spans.Span
		if fresh != nil {
			// Another goroutine on this P may have installed a span
			// meanwhile; the fresh one replaces it.
			old = c.detach(cl)
			c.install(cl, fresh)
			fresh = nil
		}
		r := c.slowStep(cl, noGuard, &f)
		h.releaseShared(c)
		var bad spans.BadFree
		for _, s := range []*spans.Span{old, r.old} {
			if s == nil {
				continue
			}
			if b := h.uncacheSpan(s); bad.N == 0 {
				bad = b
			}
		}
		if bad.N > 0 {
			if r.act == actDone {
				// Not handed out after all: the panic reports the
				// collection, and the slot goes back.
				_ = h.Free(r.p)
			}
			panic(bad.Message())
		}
		switch r.act {
		case actDone:
			if r.sampled {
				h.recordSample(r.p, cl, 0)
			}
			return r.p, nil
		case actCorrupt:
			panic(f.message())
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

// acquireShared returns the current P's cache, pinned (acquireP), or past
// the per-P caches the spare one with spare.mu held.
func (h *Heap) acquireShared(spareOnly bool) *Cache {
	if !spareOnly {
		if c := h.acquireP(); c != nil {
			return c
		}
	}
	h.spare.mu.Lock()
	if h.spare.cache == nil {
		h.spare.cache = h.newCache(false)
	}
	return h.spare.cache
}

// releaseShared undoes acquireShared.
func (h *Heap) releaseShared(c *Cache) {
	if c.perP {
		h.releaseP(c)
		return
	}
	h.spare.mu.Unlock()
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
