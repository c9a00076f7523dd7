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
	"errors"
	"fmt"
	"os"
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

// Workload-shaped benchmarks: larson (random replacement in a live set),
// xmalloc (producer allocates, consumer frees) and a cold free (the span
// and the object out of every cache). Each runs the offheap Cache, the
// Heap and Go's make side by side in one benchmark and reports their
// throughputs and the ratios over make as metrics, so the ratios come
// from one binary on one machine state.

// larsonWorkers is the number of goroutines of the larson shape: the
// benchmark's reference machine has two cores.
const larsonWorkers = 2

// larsonMin and larsonMax bound the object sizes of the larson shape
// (uniform in [larsonMin, larsonMax], as in the original benchmark).
const (
	larsonMin = 8
	larsonMax = 1000
)

// larsonBigLive is the live objects per worker of the big larson run:
// 1,000,000 objects of ~504 bytes each, about 1 GiB for two workers. It
// runs only when OFFHEAP_BENCH_BIG is set (the machine's other users need
// the memory); otherwise the "big" run uses larsonMidLive, still far
// beyond every cache of the machine.
const (
	larsonSmallLive = 5000
	larsonMidLive   = 100_000
	larsonBigLive   = 1_000_000
)

// bigBench reports whether the GiB-scale variants are asked for.
func bigBench() bool { return os.Getenv("OFFHEAP_BENCH_BIG") != "" }

// xorshift is a worker's private generator for the workload shapes.
type xorshift uint64

func (x *xorshift) next() uint64 {
	*x ^= *x << 13
	*x ^= *x >> 7
	*x ^= *x << 17
	return uint64(*x)
}

// shapeAllocator is the allocator side of a workload shape: an offheap
// Cache or Heap (Go's make is handled apart, with slices).
type shapeAllocator interface {
	Alloc(int) (unsafe.Pointer, error)
	Free(unsafe.Pointer) error
}

// larsonSize draws an object size of the larson shape.
func larsonSize(r uint64) int { return larsonMin + int(r%(larsonMax-larsonMin+1)) }

// larsonWorker is one worker's state in the larson shape: its live set,
// held through an offheap allocator (a non-nil) or as Go slices.
type larsonWorker struct {
	a    shapeAllocator
	live []unsafe.Pointer
	gl   [][]byte
	rnd  xorshift
}

// fill builds the worker's live set of n objects.
func (w *larsonWorker) fill(n int) error {
	if w.a == nil {
		w.gl = make([][]byte, n)
		for i := range w.gl {
			s := make([]byte, larsonSize(w.rnd.next()))
			s[0] = 1
			w.gl[i] = s
		}
		return nil
	}
	w.live = make([]unsafe.Pointer, n)
	for i := range w.live {
		p, err := w.a.Alloc(larsonSize(w.rnd.next()))
		if err != nil {
			return err
		}
		*(*byte)(p) = 1
		w.live[i] = p
	}
	return nil
}

// run replaces k random objects of the live set: a free and an alloc of a
// random size each (for Go slices, the replaced one becomes garbage).
func (w *larsonWorker) run(k int) error {
	if w.a == nil {
		n := uint64(len(w.gl))
		for range k {
			r := w.rnd.next()
			s := make([]byte, larsonSize(r>>32))
			s[0] = 1
			w.gl[r%n] = s
		}
		return nil
	}
	n := uint64(len(w.live))
	for range k {
		r := w.rnd.next()
		i := r % n
		if err := w.a.Free(w.live[i]); err != nil {
			return err
		}
		p, err := w.a.Alloc(larsonSize(r >> 32))
		if err != nil {
			return err
		}
		*(*byte)(p) = 1
		w.live[i] = p
	}
	return nil
}

// drain frees the live set.
func (w *larsonWorker) drain() error {
	w.gl = nil
	for _, p := range w.live {
		if err := w.a.Free(p); err != nil {
			return err
		}
	}
	w.live = nil
	return nil
}

// runShape runs f on larsonWorkers goroutines at once and returns the
// wall time until the last is done.
func runShape(f func(w int) error) (time.Duration, error) {
	var wg sync.WaitGroup
	errs := make([]error, larsonWorkers)
	t := time.Now()
	for w := range larsonWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = f(w)
		}()
	}
	wg.Wait()
	return time.Since(t), errors.Join(errs...)
}

// larsonBlock is how many replacements each worker runs per kind and turn
// in BenchmarkLarson: long enough that starting the goroutines is noise,
// short enough that the kinds take turns often and share the machine's
// drifts in load.
const larsonBlock = 1 << 14

// BenchmarkLarson is the larson shape: larsonWorkers goroutines, each with
// its own live set of objects of random sizes in [8, 1000], replacing a
// random one per operation (one free, one alloc). The "small" live set
// (5,000 per worker) fits in the caches of the machine; the "big" one
// (100,000 per worker, or 1,000,000 with OFFHEAP_BENCH_BIG set) does not.
// Kinds: "cache" (a Cache per worker), "heap" (Heap.Alloc/Free) and Go's
// make, each with its own live set, all built first and then run in
// interleaved blocks, b.N operations per worker and kind. Metrics: Mops/s
// of each kind (all workers together) and cache/make, heap/make
// (throughput ratios: above 1 is faster than the Go heap).
func BenchmarkLarson(b *testing.B) {
	big := larsonMidLive
	if bigBench() {
		big = larsonBigLive
	}
	for _, live := range []struct {
		name string
		n    int
	}{{"small", larsonSmallLive}, {"big", big}} {
		b.Run("live="+live.name, func(b *testing.B) {
			h := newBenchHeap(b)
			var kinds [3][larsonWorkers]*larsonWorker
			for k := range kinds {
				for w := range larsonWorkers {
					lw := &larsonWorker{rnd: xorshift(uint64(w+1)*0x9e3779b97f4a7c15 | 1)}
					switch k {
					case 0:
						c := newBenchCache(b, h)
						lw.a = c
					case 1:
						lw.a = h
					}
					kinds[k][w] = lw
				}
			}
			// Each worker fills its live set on its own goroutine, as it
			// would in the program the shape comes from.
			for k := range kinds {
				if _, err := runShape(func(w int) error { return kinds[k][w].fill(live.n) }); err != nil {
					b.Fatal(err)
				}
			}
			runtime.GC()
			b.ResetTimer()
			var took [3]time.Duration
			for done, turn := 0, 0; done < b.N; turn++ {
				n := min(larsonBlock, b.N-done)
				for j := range kinds {
					k := (j + turn) % len(kinds)
					d, err := runShape(func(w int) error { return kinds[k][w].run(n) })
					if err != nil {
						b.Fatal(err)
					}
					took[k] += d
				}
				done += n
			}
			b.StopTimer()
			for k := range 2 {
				if _, err := runShape(func(w int) error { return kinds[k][w].drain() }); err != nil {
					b.Fatal(err)
				}
			}
			ops := float64(b.N * larsonWorkers)
			mops := func(d time.Duration) float64 { return ops / d.Seconds() / 1e6 }
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(mops(took[0]), "cache-Mops/s")
			b.ReportMetric(mops(took[1]), "heap-Mops/s")
			b.ReportMetric(mops(took[2]), "make-Mops/s")
			b.ReportMetric(mops(took[0])/mops(took[2]), "cache/make")
			b.ReportMetric(mops(took[1])/mops(took[2]), "heap/make")
		})
	}
}

// xmallocObj is the object size of the xmalloc shape.
const xmallocObj = 64

// xmallocBatch is how many objects a producer hands to a consumer at once:
// enough that the channel's cost is noise next to the frees.
const xmallocBatch = 256

// xmallocOff runs the xmalloc shape: one producer allocates k objects of
// 64 bytes through alloc and hands them over in batches; one consumer
// frees them through free. It returns the wall time.
func xmallocOff(alloc func() (unsafe.Pointer, error), free func(unsafe.Pointer) error, k int) (time.Duration, error) {
	ch := make(chan []unsafe.Pointer, 4)
	back := make(chan []unsafe.Pointer, 8)
	for range 6 {
		back <- make([]unsafe.Pointer, 0, xmallocBatch)
	}
	errc := make(chan error, 1)
	t := time.Now()
	go func() {
		var err error
		for batch := range ch {
			for _, p := range batch {
				if e := free(p); e != nil && err == nil {
					err = e
				}
			}
			back <- batch[:0]
		}
		errc <- err
	}()
	var perr error
	for done := 0; done < k; {
		batch := <-back
		n := min(xmallocBatch, k-done)
		for range n {
			p, err := alloc()
			if err != nil {
				perr = err
				break
			}
			*(*byte)(p) = 1
			batch = append(batch, p)
		}
		ch <- batch
		done += n
		if perr != nil {
			break
		}
	}
	close(ch)
	err := <-errc
	return time.Since(t), errors.Join(perr, err)
}

// xmallocMake is xmallocOff on the Go heap: the consumer drops each slice.
func xmallocMake(k int) time.Duration {
	ch := make(chan [][]byte, 4)
	back := make(chan [][]byte, 8)
	for range 6 {
		back <- make([][]byte, 0, xmallocBatch)
	}
	fin := make(chan struct{})
	t := time.Now()
	go func() {
		for batch := range ch {
			clear(batch)
			back <- batch[:0]
		}
		close(fin)
	}()
	for done := 0; done < k; {
		batch := <-back
		n := min(xmallocBatch, k-done)
		for range n {
			s := make([]byte, xmallocObj)
			s[0] = 1
			batch = append(batch, s)
		}
		ch <- batch
		done += n
	}
	close(ch)
	<-fin
	return time.Since(t)
}

// BenchmarkXmalloc is the xmalloc shape: a producer allocates 64-byte
// objects, a consumer on another goroutine frees them, so every free is
// remote. b.N objects per kind. Kinds: "cache" (the producer and the
// consumer each own a Cache), "heap" (both use the Heap) and make.
// Metrics: M frees/s of each kind and cache/make, heap/make.
func BenchmarkXmalloc(b *testing.B) {
	h := newBenchHeap(b)
	var took [3]time.Duration
	kinds := [...]func() (time.Duration, error){
		func() (time.Duration, error) {
			pc, fc := h.NewCache(), h.NewCache()
			defer pc.Close()
			defer fc.Close()
			return xmallocOff(func() (unsafe.Pointer, error) { return pc.Alloc(xmallocObj) }, fc.Free, b.N)
		},
		func() (time.Duration, error) {
			return xmallocOff(func() (unsafe.Pointer, error) { return h.Alloc(xmallocObj) }, h.Free, b.N)
		},
		func() (time.Duration, error) { return xmallocMake(b.N), nil },
	}
	b.ResetTimer()
	for i, f := range kinds {
		d, err := f()
		if err != nil {
			b.Fatal(err)
		}
		took[i] = d
	}
	mfree := func(d time.Duration) float64 { return float64(b.N) / d.Seconds() / 1e6 }
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(mfree(took[0]), "cache-Mfree/s")
	b.ReportMetric(mfree(took[1]), "heap-Mfree/s")
	b.ReportMetric(mfree(took[2]), "make-Mfree/s")
	b.ReportMetric(mfree(took[0])/mfree(took[2]), "cache/make")
	b.ReportMetric(mfree(took[1])/mfree(took[2]), "heap/make")
}

// coldLive is the live set of BenchmarkColdFree: larger than the last
// level cache of the reference machine (260 MiB of L3 on its host), so
// that a free in random order finds the object, its span record and its
// slot state cold. 64 MiB with -short.
const (
	coldLive    = 512 << 20
	coldObjSize = 64
)

// BenchmarkColdFree frees objects of a live set larger than the LLC in
// random order: ns/op is the cost of one such free, through a Cache
// ("cache") or the Heap ("heap"). The live set is rebuilt, untimed, each
// time it runs out. (Hardware cache-miss counters are not available on
// the reference VM; where `perf stat -e cache-misses` works, run the
// benchmark under it and divide by the frees.)
func BenchmarkColdFree(b *testing.B) {
	live := coldLive
	if testing.Short() {
		live = 64 << 20
	}
	n := live / coldObjSize
	for _, kind := range []string{"cache", "heap"} {
		b.Run(kind, func(b *testing.B) {
			h := newBenchHeap(b)
			c := newBenchCache(b, h)
			var a shapeAllocator = c
			if kind == "heap" {
				a = h
			}
			ptrs := make([]unsafe.Pointer, n)
			rnd := xorshift(0x9e3779b97f4a7c15)
			left := 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if left == 0 {
					b.StopTimer()
					for j := range ptrs {
						p, err := a.Alloc(coldObjSize)
						if err != nil {
							b.Fatal(err)
						}
						*(*byte)(p) = 1
						ptrs[j] = p
					}
					for j := len(ptrs) - 1; j > 0; j-- {
						k := int(rnd.next() % uint64(j+1))
						ptrs[j], ptrs[k] = ptrs[k], ptrs[j]
					}
					// Evict what setting up left in the caches: a pass
					// over a buffer the size of the live set.
					evictCaches(live)
					left = len(ptrs)
					b.StartTimer()
				}
				left--
				if err := a.Free(ptrs[left]); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			for _, p := range ptrs[:left] {
				if err := a.Free(p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// evictCaches writes a Go buffer of n bytes, a line at a time, to push
// other data out of the CPU caches.
func evictCaches(n int) {
	buf := make([]byte, n)
	for i := 0; i < len(buf); i += 64 {
		buf[i] = 1
	}
	runtime.KeepAlive(buf)
}
