package arena

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// gcLiveBytes is the off-heap memory TestGCIndependentOfHeap keeps live
// in 64-byte objects: 1 GiB, 16M objects (less under the race detector,
// see gc_race_test.go).
var gcLiveBytes uint64 = 1 << 30

// TestGCIndependentOfHeap checks the point of the whole library: a GC
// with 1 GiB of live off-heap objects (16M objects of 64 bytes) takes no
// longer than with the heap empty. The Go heap holds nothing per object.
//
// A forced GC on an almost empty Go heap takes a few hundred microseconds,
// mostly fixed costs (stopping the world, waking the mark workers,
// sweeping), and on a loaded 2-core machine (CI runs this under -race
// next to other packages' tests) a GC whose workers wait for a CPU takes
// milliseconds. Load only ever adds time, so the test compares the
// fastest of fifteen GCs, which is the work a GC does: it measures the
// empty figure before the fill and after closing the heap and keeps the
// larger, and compares against 2× that plus 2 ms of slack. Scanning
// anything proportional to 16M objects or 131072 spans would cost tens of
// milliseconds in every GC and fail it.
func TestGCIndependentOfHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 1 GiB")
	}
	gcLiveObjects := gcLiveBytes / 64
	h := newTestHeap(t, quiet(Config{Reserve: int64(2 * gcLiveBytes)}))
	c := h.NewCache()

	runtime.GC()
	empty1 := fastestGC(gcRuns)

	start := time.Now()
	var sum uintptr
	for i := range gcLiveObjects {
		p, err := c.Alloc(64)
		if err != nil {
			t.Fatalf("object %d: %v", i, err)
		}
		*(*uint64)(p) = uint64(i) // touch it: 1 GiB resident
		sum += uintptr(p)
	}
	fillTime := time.Since(start)
	st := h.Stats()
	if st.HeapObjects != gcLiveObjects || st.HeapAlloc != gcLiveBytes {
		t.Fatalf("after the fill: %s", statsLine(st))
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if ms.HeapAlloc > 64<<20 {
		t.Fatalf("the Go heap holds %d MiB after the fill; the test means to keep it small", ms.HeapAlloc>>20)
	}

	runtime.GC() // sweep whatever the fill left
	full := fastestGC(gcRuns)
	runtime.KeepAlive(sum)
	// Closing the heap frees everything at once; then the empty figure
	// again, in the process state of after the fill.
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	empty2 := fastestGC(gcRuns)
	empty := max(empty1, empty2)

	t.Logf("%d live objects (%d MiB) allocated in %v (%.1f ns each), Metadata %d MiB, Go heap %d KiB",
		gcLiveObjects, gcLiveBytes>>20, fillTime, float64(fillTime.Nanoseconds())/float64(gcLiveObjects),
		st.Metadata>>20, ms.HeapAlloc>>10)
	t.Logf("fastest runtime.GC(): %v with %d MiB live; %v with the heap empty (before the fill %v, after Close %v)",
		full, gcLiveBytes>>20, empty, empty1, empty2)
	if full > 2*empty+2*time.Millisecond {
		t.Errorf("GC with %d MiB live takes %v, more than 2× the %v of an empty heap + 2 ms",
			gcLiveBytes>>20, full, empty)
	}
}

// gcRuns is how many forced GCs each figure takes the fastest of.
const gcRuns = 15

// fastestGC runs n forced GCs and returns the shortest.
func fastestGC(n int) time.Duration {
	defer debug.SetGCPercent(debug.SetGCPercent(-1)) // only the forced ones
	best := time.Duration(1<<63 - 1)
	for range n {
		t0 := time.Now()
		runtime.GC()
		best = min(best, time.Since(t0))
	}
	return best
}
