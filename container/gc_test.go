package container

import (
	"encoding/binary"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/offheap/offheap/arena"
)

// TestGCIndependence fills a BytesMap and a Map with gcEntries entries
// each (1 Mi, 2 Mi in all; 128 Ki each under the race detector) and checks, with the
// runtime's own figures, that the GC has nothing more to scan: the bytes a
// GC cycle scans (/gc/scan/total:bytes) and the live Go heap it finds
// (/gc/heap/live:bytes) grow by less than 1 MiB, and MemStats.HeapAlloc
// stays under a few MiB. In uninstrumented builds the fastest of fifteen
// forced GCs must also take no more than 2× the empty figure + 2 ms (load
// on the machine only ever adds time; see arena's TestGCIndependentOfHeap
// for the reasoning).
func TestGCIndependence(t *testing.T) {
	if testing.Short() {
		t.Skip("fills maps with millions of entries")
	}
	h := newHeap(t, arena.Config{Reserve: 4 << 30})
	runtime.GC()
	emptyGC := fastestGC(gcRuns)
	scan0, live0 := gcScanFigures()

	bm, err := NewBytesMap(h, 0)
	if err != nil {
		t.Fatal(err)
	}
	im, err := NewMap[uint64, [2]uint64](h, 0)
	if err != nil {
		t.Fatal(err)
	}
	var k [16]byte
	start := time.Now()
	for i := range uint64(gcEntries) {
		binary.LittleEndian.PutUint64(k[:], i)
		binary.LittleEndian.PutUint64(k[8:], i*0x9e3779b97f4a7c15)
		if err := bm.Set(k[:], k[:8]); err != nil {
			t.Fatal(err)
		}
		if err := im.Set(i, [2]uint64{i, ^i}); err != nil {
			t.Fatal(err)
		}
	}
	fill := time.Since(start)

	runtime.GC()
	fullGC := fastestGC(gcRuns)
	scan1, live1 := gcScanFigures()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st := h.Stats()
	t.Logf("%d entries in each map, filled in %v; off-heap: %d MiB in %d objects; BytesMap %+v",
		gcEntries, fill, st.HeapAlloc>>20, st.HeapObjects, bm.MemStats())
	t.Logf("GC scans %d KiB (empty: %d KiB), finds %d KiB live (empty: %d KiB); Go HeapAlloc %d KiB",
		scan1>>10, scan0>>10, live1>>10, live0>>10, ms.HeapAlloc>>10)
	if scan1 > scan0+1<<20 || live1 > live0+1<<20 {
		t.Errorf("with %d entries the GC scans %d bytes (empty: %d) and finds %d live (empty: %d)",
			2*gcEntries, scan1, scan0, live1, live0)
	}
	if ms.HeapAlloc > 8<<20 {
		t.Errorf("the Go heap holds %d KiB with the maps full", ms.HeapAlloc>>10)
	}
	if got := bm.Len() + im.Len(); got != 2*gcEntries || st.HeapObjects < 2*gcEntries {
		t.Fatalf("maps hold %d entries, heap %d objects", got, st.HeapObjects)
	}
	// Spot-check the contents survived the GCs.
	for _, i := range []uint64{0, gcEntries / 2, gcEntries - 1} {
		binary.LittleEndian.PutUint64(k[:], i)
		binary.LittleEndian.PutUint64(k[8:], i*0x9e3779b97f4a7c15)
		if v, ok := bm.Get(nil, k[:]); !ok || binary.LittleEndian.Uint64(v) != i {
			t.Fatalf("BytesMap entry %d: %x %v", i, v, ok)
		}
		if v, ok := im.Get(i); !ok || v != [2]uint64{i, ^i} {
			t.Fatalf("Map entry %d: %v %v", i, v, ok)
		}
	}
	if err := bm.Close(); err != nil {
		t.Fatal(err)
	}
	if err := im.Close(); err != nil {
		t.Fatal(err)
	}
	if st := h.Stats(); st.HeapObjects != 0 {
		t.Fatalf("after Close the heap holds %d objects", st.HeapObjects)
	}
	runtime.GC()
	emptyGC = max(emptyGC, fastestGC(gcRuns))
	t.Logf("fastest runtime.GC(): %v with the maps full, %v empty", fullGC, emptyGC)
	if gcTimingChecked && fullGC > 2*emptyGC+2*time.Millisecond {
		t.Errorf("GC with %d entries takes %v, more than 2× the %v of empty maps + 2 ms", 2*gcEntries, fullGC, emptyGC)
	}
}

// gcScanFigures runs a GC and reads the bytes it had to scan and the live
// Go heap it found.
func gcScanFigures() (scan, live uint64) {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/scan/total:bytes"}, {Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64(), s[1].Value.Uint64()
}

// gcRuns is how many forced GCs each timing takes the fastest of.
const gcRuns = 15

// fastestGC runs n forced GCs (with the automatic ones off) and returns
// the shortest.
func fastestGC(n int) time.Duration {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	best := time.Duration(1<<63 - 1)
	for range n {
		t0 := time.Now()
		runtime.GC()
		best = min(best, time.Since(t0))
	}
	return best
}
