package arena

// Benchmarks of the arena package. BENCHMARKS.md at the repository root
// records the commands, the results and the targets they are checked
// against; `make bench` runs every benchmark of the module.
//
// Groups:
//
//   - BenchmarkPair: one alloc+free pair of n bytes through a Cache, through
//     the Heap (per-P caches) and, as the Go-heap baseline, make([]byte, n)
//     stored in a package-level sink so it really escapes.
//   - BenchmarkPairRatio: the same three loops timed inside one benchmark,
//     interleaved in blocks, so the ratios cache/make and heap/cache come
//     from one run and can be reported as metrics.
//   - BenchmarkHeapParallel: Heap.Alloc/Free pairs of 64 bytes under
//     b.RunParallel; run it with -cpu=1,2 (one goroutine per P: the
//     default parallelism of 1) and compare the two ns/op.
//     BenchmarkHeapScaling reports the same scaling from one run.
//   - BenchmarkGCWithLiveObjects: runtime.GC() with 1 GiB of live 64-byte
//     objects off-heap, the same objects on the Go heap, and nothing.
//     Setup takes seconds; use -benchtime=10x.

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

// Sinks keep the compiler from optimising the measured work away. sinkBytes
// makes every make([]byte, n) escape to the Go heap; sinkAddr receives a
// digest of the off-heap addresses (a uintptr, so storing it costs no write
// barrier while the GC runs).
var (
	sinkBytes []byte
	sinkAddr  atomic.Uintptr
)

// pairSizes are the object sizes of the pair benchmarks: small classes,
// the largest page-cache span (64 KiB = 8 pages) and a large object that
// always takes the heap lock (1 MiB = 128 pages).
var pairSizes = []int{16, 64, 256, 1024, 8192, 64 << 10, 1 << 20}

// newBenchHeap returns a heap with the default configuration that is
// closed when the benchmark ends.
func newBenchHeap(b *testing.B) *Heap {
	b.Helper()
	h, err := NewHeap(Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := h.Close(); err != nil {
			b.Errorf("closing the heap: %v", err)
		}
	})
	return h
}

// newBenchCache returns a Cache of h closed when the benchmark ends (before
// the heap: cleanups run last registered first).
func newBenchCache(b *testing.B, h *Heap) *Cache {
	b.Helper()
	c := h.NewCache()
	b.Cleanup(func() {
		if err := c.Close(); err != nil {
			b.Errorf("closing the cache: %v", err)
		}
	})
	return c
}

// The pair loops. Each runs k alloc+free pairs of n bytes and writes one
// byte of every object, so the memory is really handed out. Both sides
// clear n bytes per pair: make zeroes the new slice, Free clears the
// object it frees. They are shared by BenchmarkPair and BenchmarkPairRatio
// so both measure the same code.

func pairCache(c *Cache, n, k int) error {
	var acc uintptr
	for range k {
		p, err := c.Alloc(n)
		if err != nil {
			return err
		}
		*(*byte)(p) = 1
		acc += uintptr(p)
		if err := c.Free(p); err != nil {
			return err
		}
	}
	sinkAddr.Add(acc)
	return nil
}

func pairHeap(h *Heap, n, k int) error {
	var acc uintptr
	for range k {
		p, err := h.Alloc(n)
		if err != nil {
			return err
		}
		*(*byte)(p) = 1
		acc += uintptr(p)
		if err := h.Free(p); err != nil {
			return err
		}
	}
	sinkAddr.Add(acc)
	return nil
}

// pairMake is the Go-heap baseline: the slice escapes through sinkBytes, and
// dropping the previous one makes it garbage, so the pair's "free" is the
// GC's amortised cost, included in the time.
func pairMake(n, k int) error {
	for range k {
		s := make([]byte, n)
		s[0] = 1
		sinkBytes = s
	}
	return nil
}

// warmPairs is how many pairs of each kind run before timing starts: enough
// to install the class's span in the cache and to let the Go heap settle
// into its GC cycle.
const warmPairs = 256

func BenchmarkPair(b *testing.B) {
	for _, n := range pairSizes {
		b.Run(fmt.Sprintf("size=%d", n), func(b *testing.B) {
			b.Run("cache", func(b *testing.B) {
				h := newBenchHeap(b)
				c := newBenchCache(b, h)
				runPairs(b, func(k int) error { return pairCache(c, n, k) })
			})
			b.Run("heap", func(b *testing.B) {
				h := newBenchHeap(b)
				runPairs(b, func(k int) error { return pairHeap(h, n, k) })
			})
			b.Run("make", func(b *testing.B) {
				runPairs(b, func(k int) error { return pairMake(n, k) })
				sinkBytes = nil
			})
		})
	}
}

// runPairs warms up, then times b.N pairs.
func runPairs(b *testing.B, pairs func(k int) error) {
	b.Helper()
	b.ReportAllocs()
	if err := pairs(warmPairs); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	if err := pairs(b.N); err != nil {
		b.Fatal(err)
	}
}

// ratioBlock is how many pairs of one kind run between two clock reads in
// BenchmarkPairRatio: large enough that reading the clock is noise (well
// under 1 %), small enough that the three kinds take turns many times per
// run and share the machine's slow drifts in load.
const ratioBlock = 1024

// BenchmarkPairRatio times the Cache, Heap and make pair loops in one
// benchmark and reports their ratios. Each kind runs exactly b.N pairs
// after the same warm-up, in interleaved blocks whose order rotates, and
// each block is timed on its own. The usual ns/op (the sum of all three) is
// suppressed; the per-kind times are reported as cache-ns/op, heap-ns/op
// and make-ns/op.
func BenchmarkPairRatio(b *testing.B) {
	for _, n := range pairSizes {
		b.Run(fmt.Sprintf("size=%d", n), func(b *testing.B) {
			h := newBenchHeap(b)
			c := newBenchCache(b, h)
			kinds := [...]func(k int) error{
				func(k int) error { return pairCache(c, n, k) },
				func(k int) error { return pairHeap(h, n, k) },
				func(k int) error { return pairMake(n, k) },
			}
			for _, run := range kinds {
				if err := run(warmPairs); err != nil {
					b.Fatal(err)
				}
			}
			took := runInterleaved(b, kinds[:])
			sinkBytes = nil
			cacheNs, heapNs, makeNs := took[0], took[1], took[2]
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(cacheNs, "cache-ns/op")
			b.ReportMetric(heapNs, "heap-ns/op")
			b.ReportMetric(makeNs, "make-ns/op")
			b.ReportMetric(cacheNs/makeNs, "cache/make")
			b.ReportMetric(heapNs/cacheNs, "heap/cache")
		})
	}
}

// runInterleaved runs b.N calls' worth of each kind in blocks of
// ratioBlock, rotating which kind goes first so all see the same machine
// load, and returns each kind's ns per call. Warm-up is left out of the
// timing the framework uses to pick b.N.
func runInterleaved(b *testing.B, kinds []func(k int) error) []float64 {
	b.Helper()
	b.ResetTimer()
	took := make([]time.Duration, len(kinds))
	for done, turn := 0, 0; done < b.N; turn++ {
		k := min(ratioBlock, b.N-done)
		for j := range kinds {
			i := (j + turn) % len(kinds)
			t := time.Now()
			if err := kinds[i](k); err != nil {
				b.Fatal(err)
			}
			took[i] += time.Since(t)
		}
		done += k
	}
	ns := make([]float64, len(kinds))
	for i, d := range took {
		ns[i] = float64(d.Nanoseconds()) / float64(b.N)
	}
	return ns
}

// parallelSize is the object size of the parallel benchmarks.
const parallelSize = 64

// BenchmarkHeapParallel runs Heap.Alloc/Free pairs of 64 bytes from
// GOMAXPROCS goroutines (RunParallel's default parallelism of 1 per P).
// Run with -cpu=1,2: ns/op is wall time per pair over all goroutines, so
// the scaling from one goroutine to two is ns/op(-cpu=1) / ns/op(-cpu=2).
func BenchmarkHeapParallel(b *testing.B) {
	h := newBenchHeap(b)
	// Warm every P's cache: one span of the class per P.
	if _, err := runWorkers(h, runtime.GOMAXPROCS(0), warmPairs); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var acc uintptr
		for pb.Next() {
			p, err := h.Alloc(parallelSize)
			if err != nil {
				b.Error(err)
				return
			}
			*(*byte)(p) = 1
			acc += uintptr(p)
			if err := h.Free(p); err != nil {
				b.Error(err)
				return
			}
		}
		sinkAddr.Add(acc)
	})
}

// scalingBlock is how many pairs each worker runs per timed round in
// BenchmarkHeapScaling (about a millisecond: starting the goroutines is
// noise).
const scalingBlock = 1 << 16

// BenchmarkHeapScaling reports the scaling of Heap.Alloc/Free pairs of 64
// bytes from one goroutine to two, measured in one benchmark: in rounds,
// one goroutine runs a block of pairs alone, then two goroutines run a
// block each at the same time. Both do b.N pairs per goroutine in all.
// Metrics: 1g-ns/op and 2g-ns/op are wall time per pair (for two
// goroutines, per pair of all of them), speedup is 1g-ns/op / 2g-ns/op
// (2 is perfect). Needs GOMAXPROCS >= 2.
func BenchmarkHeapScaling(b *testing.B) {
	if runtime.GOMAXPROCS(0) < 2 {
		b.Skip("needs GOMAXPROCS >= 2")
	}
	h := newBenchHeap(b)
	if _, err := runWorkers(h, 2, warmPairs); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var one, two time.Duration
	for done, turn := 0, 0; done < b.N; turn++ {
		k := min(scalingBlock, b.N-done)
		for j := range 2 {
			g := 1 + (j+turn)%2
			d, err := runWorkers(h, g, k)
			if err != nil {
				b.Fatal(err)
			}
			if g == 1 {
				one += d
			} else {
				two += d
			}
		}
		done += k
	}
	oneNs := float64(one.Nanoseconds()) / float64(b.N)
	twoNs := float64(two.Nanoseconds()) / float64(2*b.N)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(oneNs, "1g-ns/op")
	b.ReportMetric(twoNs, "2g-ns/op")
	b.ReportMetric(oneNs/twoNs, "speedup")
}

// runWorkers starts g goroutines, then releases them together to run k
// pairs each through h, and returns the wall time from release to the end
// of the last.
func runWorkers(h *Heap, g, k int) (time.Duration, error) {
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, g)
	ready.Add(g)
	done.Add(g)
	for range g {
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			if err := pairHeap(h, parallelSize, k); err != nil {
				errs <- err
			}
		}()
	}
	ready.Wait()
	t := time.Now()
	close(start)
	done.Wait()
	d := time.Since(t)
	close(errs)
	return d, <-errs
}

// GC benchmark sizes: 1 GiB of 64-byte objects.
const (
	gcObjSize  = 64
	gcLiveSize = 1 << 30
	gcObjects  = gcLiveSize / gcObjSize // 16 Mi
)

// BenchmarkGCWithLiveObjects times runtime.GC() with 1 GiB of live 64-byte
// objects off-heap, the same objects on the Go heap, and with nothing live.
// Setup (seconds) runs once per -count: b.Loop runs the function once.
//
//   - offheap: 16 Mi objects from a Heap, each holding the address of the
//     previous one, an off-heap linked list whose head is a uintptr: all
//     live, all resident, none seen by the GC.
//   - goheap: 16 Mi new([64]byte) kept in a []*[64]byte, the pointers the
//     GC must follow on every cycle.
//   - empty: nothing allocated.
//
// Metrics besides ns/op (the mean time of one runtime.GC()): p50-ns/gc,
// the median time of one runtime.GC() in the run, which a burst of load
// from other processes moves less than the mean; live-MiB, the live bytes
// of the objects; goheap-MiB, the Go heap's live bytes
// (runtime.MemStats.HeapAlloc) after setup.
//
// runtime.GC() is cheap without Go-heap objects, so offheap and empty can
// take many more iterations than goheap (BENCHMARKS.md runs them apart).
func BenchmarkGCWithLiveObjects(b *testing.B) {
	b.Run("offheap", func(b *testing.B) {
		h := newBenchHeap(b)
		c := h.NewCache()
		var head uintptr
		for range gcObjects {
			p, err := c.Alloc(gcObjSize)
			if err != nil {
				b.Fatal(err)
			}
			*(*uintptr)(p) = head
			head = uintptr(p)
		}
		if err := c.Close(); err != nil {
			b.Fatal(err)
		}
		st := h.Stats()
		if st.HeapObjects != gcObjects || st.HeapAlloc != gcLiveSize {
			b.Fatalf("heap holds %d objects, %d bytes; want %d, %d",
				st.HeapObjects, st.HeapAlloc, gcObjects, gcLiveSize)
		}
		timeGC(b, st.HeapAlloc)
		sinkAddr.Add(head)
	})
	b.Run("goheap", func(b *testing.B) {
		objs := make([]*[gcObjSize]byte, gcObjects)
		for i := range objs {
			o := new([gcObjSize]byte)
			o[0] = byte(i)
			objs[i] = o
		}
		timeGC(b, gcLiveSize)
		runtime.KeepAlive(objs)
		objs = nil
		// Give the memory back so later benchmarks start from a small heap.
		debug.FreeOSMemory()
	})
	b.Run("empty", func(b *testing.B) {
		timeGC(b, 0)
	})
}

// timeGC collects the setup's garbage, reports the live sizes, then times
// one runtime.GC() per iteration.
func timeGC(b *testing.B, live uint64) {
	b.Helper()
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	var took []time.Duration
	for b.Loop() {
		t := time.Now()
		runtime.GC()
		took = append(took, time.Since(t))
	}
	// After the loop: b.Loop's start resets reported metrics.
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Nanoseconds()), "p50-ns/gc")
	b.ReportMetric(float64(live)/(1<<20), "live-MiB")
	b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "goheap-MiB")
}

// BenchmarkCacheParallel is BenchmarkHeapParallel through one Cache per
// goroutine. Run with -cpu=1,2,...: ns/op is wall time per pair over all
// goroutines.
func BenchmarkCacheParallel(b *testing.B) {
	h := newBenchHeap(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := h.NewCache()
		defer c.Close()
		var acc uintptr
		for pb.Next() {
			p, err := c.Alloc(parallelSize)
			if err != nil {
				b.Error(err)
				return
			}
			*(*byte)(p) = 1
			acc += uintptr(p)
			if err := c.Free(p); err != nil {
				b.Error(err)
				return
			}
		}
		sinkAddr.Add(acc)
	})
}

// BenchmarkHandoffParallel measures the remote-free path under load, in
// the producer/consumer shape of a cache or a queue: each goroutine fills
// a batch through the Heap, swaps it into a shared mailbox, and frees the
// batch it got back, most often one another goroutine allocated on
// another P. ns/op is wall time per pair over all goroutines.
func BenchmarkHandoffParallel(b *testing.B) {
	h := newBenchHeap(b)
	const batch = 256
	var mailbox atomic.Pointer[[]unsafe.Pointer]
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		mine := make([]unsafe.Pointer, 0, batch)
		for pb.Next() {
			p, err := h.Alloc(parallelSize)
			if err != nil {
				b.Error(err)
				return
			}
			if mine = append(mine, p); len(mine) < batch {
				continue
			}
			full := mine
			got := mailbox.Swap(&full)
			mine = make([]unsafe.Pointer, 0, batch)
			if got != nil {
				for _, q := range *got {
					if err := h.Free(q); err != nil {
						b.Error(err)
						return
					}
				}
			}
		}
		for _, q := range mine {
			if err := h.Free(q); err != nil {
				b.Error(err)
			}
		}
	})
	if got := mailbox.Swap(nil); got != nil {
		for _, q := range *got {
			if err := h.Free(q); err != nil {
				b.Error(err)
			}
		}
	}
	if st := h.Stats(); st.HeapObjects != 0 {
		b.Fatalf("%d objects left", st.HeapObjects)
	}
}

// BenchmarkMakeParallel is the Go-heap baseline for the parallel
// benchmarks: make([]byte, 64) from every goroutine.
func BenchmarkMakeParallel(b *testing.B) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var acc uintptr
		for pb.Next() {
			s := make([]byte, parallelSize)
			sinkBytes = s
			acc += uintptr(len(s))
		}
		sinkAddr.Add(acc)
	})
}
