package arena

import (
	"runtime"
	"unsafe"

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
// GOMAXPROCS changes at run time: programs call runtime.GOMAXPROCS, and
// since Go 1.25 the runtime retunes it when the cgroup's CPU limit
// changes. The table of per-P caches (Heap.pcs) follows it. It is never
// modified once published: a change builds a new table under pcsMu and
// publishes it with one atomic store, and the fast path pays one atomic
// (on amd64, plain) load of the table pointer.
//
//   - Growth: a call that finds its P id past the table takes the slow
//     path (allocSmallSlow), which publishes a table long enough for
//     GOMAXPROCS and its P, with fresh caches for the new Ps; the old
//     caches carry over. Heap.Free from such a P before any allocation
//     there counts its free in sharedCnt and needs no cache.
//   - Shrink: the caches of Ps that no longer exist would keep their spans
//     for ever, so trimPerP drops them: it publishes a table cut to
//     GOMAXPROCS, waits until no goroutine can still be using a dropped
//     cache, and hands the dropped caches' spans and counts back as
//     Cache.Close does. Why that wait suffices: in normal builds a per-P
//     cache is used only by a goroutine pinned to its P, between loading
//     the table and unpinning (acquireP, fastP). The wait is a
//     stop-the-world (waitPinned), which cannot complete while any
//     goroutine is pinned; a goroutine that pins after it loads the new
//     table, which holds no dropped cache (Go's atomics are sequentially
//     consistent). This does not even rely on the dropped Ps being gone:
//     if GOMAXPROCS grows again meanwhile, the new Ps get fresh caches. In
//     race builds a per-P cache is used under its mutex; trimPerP marks a
//     dropped cache closed under that mutex, and fastP, finding a closed
//     cache, loads the table again.
//
// What triggers a trim: Heap.Scavenge, and the background scavenger, which
// compares runtime.GOMAXPROCS(0) (it takes the scheduler's lock, too dear
// for every slow path) with the table's length at each step and, if the
// table is longer, sets trimDue for the next allocation slow path to act
// on. The trim runs there, in a user's call, because handing spans back
// may find a racing double free, which panics (as Cache.Close would), and
// a panic in the scavenger's goroutine could not be recovered. With the
// background scavenger off (ScavengeDelay < 0) only Heap.Scavenge trims.

// allocSmallSlow refills the current P's cache of class cl, and serves
// sampled allocations. The parts that may block, allocate on the Go heap
// or panic (class lock, heap lock, system calls, recording a stack, a
// failed debug check) run with the P released; a fresh span is installed
// in whichever P the goroutine holds afterwards. A P past the table of
// per-P caches grows the table first; a trim the scavenger asked for
// (trimDue) is done first too.
//
// It is a slow section of its own, counted by P (enterByP, closing.go).
func (h *Heap) allocSmallSlow(cl uint8, size int) (unsafe.Pointer, error) {
	shard, ok := h.enterByP()
	if !ok {
		return nil, ErrClosed
	}
	defer h.leaveByP(shard)
	if h.trimDue.Load() {
		h.trimPerP()
	}
	var fresh *spans.Span // a span fetched unpinned, to install
	noGuard := false
	var f checkFault
	for {
		c := h.acquireShared()
		var old *spans.Span
		if fresh != nil {
			// Another goroutine on this P may have installed a span
			// meanwhile; if the cache owns all it may, the fresh one
			// replaces the current one.
			old = c.install(cl, fresh)
			fresh = nil
		}
		// The P's batch of remote frees goes out first (see allocSlow).
		rb := c.takeRemote()
		r := c.slowStep(cl, noGuard, &f)
		h.releaseP(c)
		bad := h.publishSlow(rb)
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
			h.raise(bad.Message())
		}
		switch r.act {
		case actDone:
			if r.sampled {
				h.recordSample(r.p, cl, 0)
			}
			return r.p, nil
		case actCorrupt:
			h.raise(f.message())
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

// acquireShared returns the current P's cache, pinned (acquireP; undone
// by releaseP), growing the table first if the P is past it.
func (h *Heap) acquireShared() *Cache {
	for {
		if c := h.acquireP(); c != nil {
			return c
		}
		// Unpinned here: the goroutine may run on another P when it pins
		// again, so the loop re-reads its P after growing.
		h.growPerP()
	}
}

// growPerP publishes a table of per-P caches long enough for GOMAXPROCS
// and the current P, keeping the caches already there. It runs in a slow
// section, unpinned. Lock order: pcsMu, then statsMu (NewCache).
func (h *Heap) growPerP() {
	procs := runtime.GOMAXPROCS(0)
	n := max(procs, pickP(procs)+1)
	h.pcsMu.Lock()
	defer h.pcsMu.Unlock()
	old := *h.pcs.Load()
	if len(old) >= n {
		return // grown meanwhile
	}
	pcs := make([]*Cache, n)
	copy(pcs, old)
	for i := len(old); i < n; i++ {
		pcs[i] = h.NewCache()
	}
	h.pcs.Store(&pcs)
}

// notePerP is the scavenger's check, at each step, for a GOMAXPROCS shrink:
// the trim is left to the next allocation slow path (see above).
func (h *Heap) notePerP() {
	if runtime.GOMAXPROCS(0) < len(*h.pcs.Load()) {
		h.trimDue.Store(true)
	}
}

// trimPerP drops the per-P caches of Ps past GOMAXPROCS and hands their
// spans back (the argument that no one still uses them is above). It runs
// in a slow section, unpinned and holding nothing; a racing double free
// found in a dropped cache's spans panics once all are handed back.
func (h *Heap) trimPerP() {
	h.trimDue.Store(false)
	n := runtime.GOMAXPROCS(0)
	if len(*h.pcs.Load()) <= n {
		return
	}
	h.pcsMu.Lock()
	old := *h.pcs.Load()
	if len(old) <= n {
		h.pcsMu.Unlock()
		return
	}
	pcs := append([]*Cache(nil), old[:n]...)
	h.pcs.Store(&pcs)
	h.pcsMu.Unlock()
	waitDropped()
	var bad spans.BadFree
	for _, c := range old[n:] {
		lockDropped(c)
		c.closed = true
		unlockDropped(c)
		if b := c.release(); bad.N == 0 {
			bad = b
		}
	}
	h.panicIfBad(bad)
}

// perPCaches returns the current table of per-P caches, for tests and
// Verify.
func (h *Heap) perPCaches() []*Cache { return *h.pcs.Load() }
