package arena

import (
	"flag"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/offheap/offheap/sizeclasses"
)

var long = flag.Bool("long", false, "run long stress tests")

// stressItem is an object in flight between workers.
type stressItem struct {
	p    unsafe.Pointer
	size int
	id   uint64
}

// TestStress runs workers that allocate objects of random sizes, fill each
// with a pattern of its own, and pass them over channels to other workers,
// which check the whole pattern and free them: through their own Cache,
// through the Heap, or (for the Heap workers) with Heap.Free. Each worker
// also keeps a pool of objects for a while, so lifetimes mix. A monitor
// reads Stats throughout: counters must never go backwards. At the end
// everything is freed and the heap must be empty and consistent.
//
// Short by default (about a second); -long runs for a minute.
func TestStress(t *testing.T) {
	d := time.Second
	if testing.Short() {
		d = 200 * time.Millisecond
	}
	if *long {
		d = time.Minute
	}
	for _, bg := range []bool{true, false} {
		name := "background scavenger"
		cfg := Config{Reserve: 1 << 30, ScavengeDelay: time.Millisecond, RetainBytes: -1, RetainFraction: -1}
		if !bg {
			name = "no background scavenger"
			cfg = quiet(Config{Reserve: 1 << 30})
		}
		t.Run(name, func(t *testing.T) { runStress(t, cfg, d/2) })
	}
}

func runStress(t *testing.T, cfg Config, d time.Duration) {
	const (
		workers  = 8
		heapOnly = 3 // every heapOnly-th worker uses h.Alloc/h.Free only
		keepMax  = 64
	)
	h := newTestHeap(t, cfg)
	inbox := make([]chan stressItem, workers)
	for i := range inbox {
		inbox[i] = make(chan stressItem, 128)
	}
	var (
		nextID        atomic.Uint64
		allocs, frees atomic.Uint64
		failed        atomic.Bool
		producers     sync.WaitGroup
		all           sync.WaitGroup
	)
	allProduced := make(chan struct{})
	deadline := time.Now().Add(d)
	fail := func(format string, args ...any) {
		if failed.CompareAndSwap(false, true) {
			t.Errorf(format, args...)
		}
	}

	worker := func(w int) {
		defer all.Done()
		rng := rand.New(rand.NewPCG(uint64(w), 42))
		var a allocFreer = h
		var c *Cache
		if w%heapOnly != 0 {
			c = h.NewCache()
			a = c
		}
		// The freer for a received object: own cache, or the Heap.
		freer := func() allocFreer {
			if c != nil && rng.IntN(4) == 0 {
				return h
			}
			return a
		}
		consume := func(it stressItem, f allocFreer) {
			if k := findPatternError(it.p, it.size, it.id); k >= 0 {
				fail("worker %d: object %d (%p, %d bytes) corrupt at byte %d", w, it.id, it.p, it.size, k)
			}
			if err := f.Free(it.p); err != nil {
				fail("worker %d: Free(%p) of object %d: %v", w, it.p, it.id, err)
			}
			frees.Add(1)
		}
		var keep []stressItem
		for time.Now().Before(deadline) && !failed.Load() {
			var size int
			switch r := rng.IntN(100); {
			case r < 60:
				size = rng.IntN(257)
			case r < 90:
				size = rng.IntN(4097)
			case r < 99:
				size = rng.IntN(sizeclasses.MaxSmallSize + 1)
			default:
				size = sizeclasses.MaxSmallSize + 1 + rng.IntN(256<<10)
			}
			p, err := a.Alloc(size)
			if err != nil {
				fail("worker %d: Alloc(%d): %v", w, size, err)
				break
			}
			allocs.Add(1)
			if uintptr(p)%wantAlign(size) != 0 {
				fail("worker %d: Alloc(%d) = %p misaligned", w, size, p)
			}
			if k := firstByteNot(p, size, 0); k >= 0 {
				fail("worker %d: Alloc(%d) = %p: byte %d not zero", w, size, p, k)
			}
			it := stressItem{p, size, nextID.Add(1)}
			writePattern(p, size, it.id)

			if rng.IntN(4) == 0 {
				// Keep it for a while; free one of the kept ones locally.
				keep = append(keep, it)
				if len(keep) > keepMax {
					i := rng.IntN(len(keep))
					consume(keep[i], freer())
					keep[i] = keep[len(keep)-1]
					keep = keep[:len(keep)-1]
				}
				continue
			}
			dst := inbox[rng.IntN(workers)]
			for sent := false; !sent; {
				select {
				case dst <- it:
					sent = true
				case in := <-inbox[w]:
					consume(in, freer())
				}
			}
		}
		for _, it := range keep {
			consume(it, freer())
		}
		producers.Done()
		for {
			select {
			case in := <-inbox[w]:
				consume(in, freer())
			case <-allProduced:
				for {
					select {
					case in := <-inbox[w]:
						consume(in, freer())
					default:
						if c != nil {
							if err := c.Close(); err != nil {
								fail("worker %d: Close: %v", w, err)
							}
						}
						return
					}
				}
			}
		}
	}

	// The monitor: Stats under traffic. Counters never go backwards and
	// live objects never go negative.
	stop := make(chan struct{})
	var monitor sync.WaitGroup
	monitor.Add(1)
	go func() {
		defer monitor.Done()
		var prev Stats
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			st := h.Stats()
			if st.Mallocs < prev.Mallocs || st.Frees < prev.Frees || st.ScavengeReleased < prev.ScavengeReleased {
				fail("Stats went backwards: Mallocs %d -> %d, Frees %d -> %d, ScavengeReleased %d -> %d",
					prev.Mallocs, st.Mallocs, prev.Frees, st.Frees, prev.ScavengeReleased, st.ScavengeReleased)
			}
			if st.Frees > st.Mallocs || st.HeapObjects > 1<<40 {
				fail("Stats under traffic: Frees %d > Mallocs %d or HeapObjects %d negative", st.Frees, st.Mallocs, st.HeapObjects)
			}
			for cl, cs := range st.Classes {
				if cs.Frees > cs.Mallocs {
					fail("class %d: Frees %d > Mallocs %d under traffic", cl, cs.Frees, cs.Mallocs)
				}
			}
			prev = st
		}
	}()

	producers.Add(workers)
	all.Add(workers)
	for w := range workers {
		go worker(w)
	}
	producers.Wait()
	close(allProduced)
	all.Wait()
	close(stop)
	monitor.Wait()
	if t.Failed() {
		return
	}

	st := h.Stats()
	t.Logf("%d objects allocated and freed; %s", allocs.Load(), statsLine(st))
	if allocs.Load() == 0 || allocs.Load() != frees.Load() {
		t.Fatalf("%d allocations, %d frees", allocs.Load(), frees.Load())
	}
	if st.HeapObjects != 0 || st.HeapAlloc != 0 || st.Mallocs != st.Frees || st.Mallocs != allocs.Load() {
		t.Fatalf("after the stress: %s; want no objects and %d mallocs", statsLine(st), allocs.Load())
	}
	if err := statsIdentities(st); err != nil {
		t.Fatal(err)
	}
	verifyOK(t, h)
	h.Scavenge()
	if st := h.Stats(); st.Committed > st.HeapInuse+uint64(len(h.perPCaches()))*64*PageSize {
		t.Errorf("after Scavenge: %s", statsLine(st))
	}
	verifyOK(t, h)
}
