package arena

import (
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

// setProcs sets GOMAXPROCS for the test and restores it afterwards.
func setProcs(t *testing.T, n int) {
	t.Helper()
	old := runtime.GOMAXPROCS(n)
	t.Cleanup(func() { runtime.GOMAXPROCS(old) })
}

// cachedSpans counts the spans a cache holds. Call it only while no one
// uses the cache.
func cachedSpans(c *Cache) int {
	return len(c.heldSpans())
}

// spansPastP counts the spans held by the per-P caches of Ps from..end.
func spansPastP(pcs []*Cache, from int) int {
	n := 0
	for _, c := range pcs[min(from, len(pcs)):] {
		n += cachedSpans(c)
	}
	return n
}

// allocEverywhere runs goroutines that allocate objects of many classes
// through Heap.Alloc and free them, until Ps past the first have used
// their caches (or a deadline: the test then says so).
func allocEverywhere(t *testing.T, h *Heap, goroutines int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var ps []unsafe.Pointer
				for i := range 256 {
					p, err := h.Alloc(8 + (g*256+i)*40%3000)
					if err != nil {
						t.Error(err)
						return
					}
					ps = append(ps, p)
					if i%32 == 0 {
						runtime.Gosched()
					}
				}
				for _, p := range ps {
					if err := h.Free(p); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		if spansPastP(h.perPCaches(), 1) > 0 || t.Failed() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no goroutine ran on a P past the first in 10 s")
		}
	}
}

// GOMAXPROCS raised after NewHeap: the Ps it adds get per-P caches of their
// own (they used to share one spare cache behind a mutex). Lowered again:
// Heap.Scavenge drops the caches of the Ps that are gone and their spans
// go back (they used to stay cached for ever).
func TestPerPCachesFollowGOMAXPROCS(t *testing.T) {
	if !perPByP {
		t.Skip("offheap_nolinkname: caches are picked at random, not by P, and the table does not grow")
	}
	const procs = 8
	setProcs(t, 1)
	h := newTestHeap(t, Config{Reserve: 256 << 20, ScavengeDelay: -1})
	if n := len(h.perPCaches()); n != 1 {
		t.Fatalf("%d per-P caches at GOMAXPROCS 1, want 1", n)
	}
	runtime.GOMAXPROCS(procs)
	allocEverywhere(t, h, 4*procs)
	pcs := h.perPCaches()
	if len(pcs) != procs {
		t.Fatalf("%d per-P caches after GOMAXPROCS(%d), want %d", len(pcs), procs, procs)
	}
	held := spansPastP(pcs, 1)
	t.Logf("after growth: Ps 1-%d hold %d spans", procs-1, held)
	verifyOK(t, h)

	runtime.GOMAXPROCS(1)
	before := h.Stats()
	h.Scavenge()
	after := h.Stats()
	if n := len(h.perPCaches()); n != 1 {
		t.Fatalf("%d per-P caches after GOMAXPROCS(1) and Scavenge, want 1", n)
	}
	if n := spansPastP(pcs, 1); n != 0 {
		t.Fatalf("the dropped caches still hold %d spans", n)
	}
	h.statsMu.Lock()
	for _, c := range pcs[1:] {
		if h.caches[c.id] != nil {
			t.Errorf("dropped per-P cache %d still registered", c.id)
		}
	}
	h.statsMu.Unlock()
	t.Logf("HeapInuse %d -> %d", before.HeapInuse, after.HeapInuse)
	if after.HeapInuse >= before.HeapInuse {
		t.Fatalf("HeapInuse %d -> %d: the dropped caches' %d spans did not go back", before.HeapInuse, after.HeapInuse, held)
	}
	if after.Mallocs != before.Mallocs || after.Frees != before.Frees {
		t.Fatalf("counts changed by the drop: mallocs %d -> %d, frees %d -> %d",
			before.Mallocs, after.Mallocs, before.Frees, after.Frees)
	}
	verifyOK(t, h)
	// Growing again gives fresh caches, and the heap works.
	runtime.GOMAXPROCS(procs)
	allocEverywhere(t, h, 4*procs)
	verifyOK(t, h)
}

// With the background scavenger on, a shrink is noticed at its next step
// and the trim done by the next allocation slow path.
func TestPerPTrimByScavenger(t *testing.T) {
	const procs = 4
	setProcs(t, procs)
	h := newTestHeap(t, Config{Reserve: 256 << 20, ScavengeDelay: time.Millisecond})
	allocEverywhere(t, h, 4*procs)
	runtime.GOMAXPROCS(1)
	deadline := time.Now().Add(10 * time.Second)
	for !h.trimDue.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the scavenger did not notice GOMAXPROCS shrink in 10 s")
		}
		time.Sleep(time.Millisecond)
	}
	// A class no cache has touched: its first allocation is a slow path.
	p, err := h.Alloc(20000)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(h.perPCaches()); n != 1 {
		t.Fatalf("%d per-P caches after the slow path, want 1", n)
	}
	if err := h.Free(p); err != nil {
		t.Fatal(err)
	}
	verifyOK(t, h)
}

// Goroutines allocate and free through the Heap while GOMAXPROCS moves up
// and down and Scavenge trims: no object may be lost or handed out twice,
// and Verify must pass at the end (run it with -race too: race builds
// take the per-P caches' mutexes instead of pinning).
func TestGOMAXPROCSChurn(t *testing.T) {
	setProcs(t, 2)
	h := newTestHeap(t, Config{Reserve: 256 << 20, ScavengeDelay: -1})
	var stop atomic.Bool
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 1))
			type obj struct {
				p    unsafe.Pointer
				size int
				tag  byte
			}
			var live []obj
			for !stop.Load() {
				if len(live) < 64 && r.IntN(3) > 0 {
					size := 1 + r.IntN(2048)
					p, err := h.Alloc(size)
					if err != nil {
						t.Error(err)
						return
					}
					b := unsafe.Slice((*byte)(p), size)
					if b[0] != 0 || b[size-1] != 0 {
						t.Errorf("Alloc(%d) = %p not zero", size, p)
						return
					}
					tag := byte(1 + r.IntN(255))
					b[0], b[size-1] = tag, tag
					live = append(live, obj{p, size, tag})
					continue
				}
				if len(live) == 0 {
					continue
				}
				i := r.IntN(len(live))
				o := live[i]
				live[i] = live[len(live)-1]
				live = live[:len(live)-1]
				b := unsafe.Slice((*byte)(o.p), o.size)
				if b[0] != o.tag || b[o.size-1] != o.tag {
					t.Errorf("object %p of %d bytes overwritten", o.p, o.size)
					return
				}
				if err := h.Free(o.p); err != nil {
					t.Error(err)
					return
				}
			}
			for _, o := range live {
				if err := h.Free(o.p); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	r := rand.New(rand.NewPCG(7, 7))
	const rounds = 60
	for range rounds {
		runtime.GOMAXPROCS(1 + r.IntN(8))
		time.Sleep(time.Millisecond)
		h.Scavenge()
	}
	stop.Store(true)
	wg.Wait()
	verifyOK(t, h)
	if st := h.Stats(); st.HeapAlloc != 0 || st.Mallocs != st.Frees {
		t.Fatalf("all freed, yet HeapAlloc %d, Mallocs %d, Frees %d", st.HeapAlloc, st.Mallocs, st.Frees)
	}
}
