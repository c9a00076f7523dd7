package arena

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

// gcLiveBytes is the off-heap memory TestGCIndependentOfHeap keeps live
// in 64-byte objects: 1 GiB, 16M objects (less under the race detector,
// see gc_race_test.go).
var gcLiveBytes uint64 = 1 << 30

// TestGCIndependentOfHeap checks the point of the whole library: with 1 GiB
// of live off-heap objects (16M objects of 64 bytes), the GC has nothing
// more to scan and takes no longer than with the heap empty. The Go heap
// holds nothing per object.
//
// The first check is exact: the runtime's own figures for what a GC
// scans (/gc/scan/total:bytes) and what it found live (/gc/heap/live:bytes)
// must not grow by more than 1 MiB with the off-heap heap full. It holds
// in every build, including the race-detector build CI runs.
//
// The second is the timing the issue asks for, in uninstrumented builds
// only (gcTimingChecked): under the race detector a forced GC's time
// depends on the race runtime's own bookkeeping (it measured 4 ms with the
// heap full and 0.2 ms empty in one run, 0.7 vs 2.2 ms in another), not on
// what the GC scans. A forced GC on an almost empty Go heap takes a few
// hundred microseconds, mostly fixed costs, and on a loaded machine a GC
// whose workers wait for a CPU takes milliseconds; load only ever adds
// time, so the test compares the fastest of fifteen GCs against 2× the
// larger of the empty figures before the fill and after Close, plus 2 ms.
func TestGCIndependentOfHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 1 GiB")
	}
	gcLiveObjects := gcLiveBytes / 64
	h := newTestHeap(t, quiet(Config{Reserve: int64(2 * gcLiveBytes)}))
	c := h.NewCache()

	runtime.GC()
	empty1 := fastestGC(gcRuns)
	scanEmpty, liveEmpty := gcScanFigures()

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
	scanFull, liveFull := gcScanFigures()
	t.Logf("GC scans %d KiB with the heap empty and %d KiB with %d MiB live off-heap; live Go heap %d KiB vs %d KiB",
		scanEmpty>>10, scanFull>>10, gcLiveBytes>>20, liveEmpty>>10, liveFull>>10)
	if scanFull > scanEmpty+1<<20 || liveFull > liveEmpty+1<<20 {
		t.Errorf("with %d MiB live off-heap the GC scans %d bytes (empty: %d) and finds %d live (empty: %d)",
			gcLiveBytes>>20, scanFull, scanEmpty, liveFull, liveEmpty)
	}
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
	if gcTimingChecked && full > 2*empty+2*time.Millisecond {
		t.Errorf("GC with %d MiB live takes %v, more than 2× the %v of an empty heap + 2 ms",
			gcLiveBytes>>20, full, empty)
	}
}

// gcScanFigures reads, after a GC, the bytes the GC must scan and the
// live Go heap it found.
func gcScanFigures() (scan, live uint64) {
	runtime.GC()
	ms := []metrics.Sample{{Name: "/gc/scan/total:bytes"}, {Name: "/gc/heap/live:bytes"}}
	metrics.Read(ms)
	return ms[0].Value.Uint64(), ms[1].Value.Uint64()
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
