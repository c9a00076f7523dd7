package arena

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/offheap/offheap/pages"
	"github.com/offheap/offheap/sizeclasses"
)

// newTestHeap returns a heap that is closed when the test ends (a Close the
// test already did is fine).
func newTestHeap(t testing.TB, cfg Config) *Heap {
	t.Helper()
	h, err := NewHeap(cfg)
	if err != nil {
		t.Fatalf("NewHeap(%+v): %v", cfg, err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return h
}

// verifyOK fails the test if h.Verify finds anything.
func verifyOK(t testing.TB, h *Heap) {
	t.Helper()
	if err := h.Verify(); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

// objExtent is what an object of n bytes costs in HeapAlloc: its class size
// for small objects (n = 0 lands in class 1), whole pages for large ones.
func objExtent(n int) uint64 {
	if n <= sizeclasses.MaxSmallSize {
		return uint64(sizeclasses.Size(sizeclasses.SizeToClass(uintptr(n))))
	}
	return uint64((n + pages.PageSize - 1) &^ (pages.PageSize - 1))
}

// objClass is the size class of an n-byte object, 0 for large.
func objClass(n int) uint8 {
	if n > sizeclasses.MaxSmallSize {
		return 0
	}
	return sizeclasses.SizeToClass(uintptr(n))
}

// wantAlign is the alignment Alloc promises for n bytes.
func wantAlign(n int) uintptr {
	switch {
	case n > sizeclasses.MaxSmallSize:
		return pages.PageSize
	case n >= 16:
		return 16
	default:
		return 8
	}
}

// bytesAt is the n bytes at p as a slice.
func bytesAt(p unsafe.Pointer, n int) []byte {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(p), n)
}

// fillBytes sets the n bytes at p (8-aligned) to b, a word at a time.
func fillBytes(p unsafe.Pointer, n int, b byte) {
	w := uint64(b) * 0x0101010101010101
	words := unsafe.Slice((*uint64)(p), n/8)
	for i := range words {
		words[i] = w
	}
	for k := n &^ 7; k < n; k++ {
		*(*byte)(unsafe.Add(p, k)) = b
	}
}

// firstByteNot returns the index of the first of the n bytes at p that is not
// b, or -1. It compares a word at a time: objects are 8-aligned.
func firstByteNot(p unsafe.Pointer, n int, b byte) int {
	w := uint64(b) * 0x0101010101010101
	words := unsafe.Slice((*uint64)(p), n/8)
	for i, x := range words {
		if x != w {
			for k := i * 8; ; k++ {
				if *(*byte)(unsafe.Add(p, k)) != b {
					return k
				}
			}
		}
	}
	for k := n &^ 7; k < n; k++ {
		if *(*byte)(unsafe.Add(p, k)) != b {
			return k
		}
	}
	return -1
}

// writePattern writes a pattern derived from id over the n bytes at p:
// each 8-byte word holds id mixed with its index, the tail bytes the low
// byte of the mix. findPatternError reports the first byte that differs, or
// -1.
func writePattern(p unsafe.Pointer, n int, id uint64) {
	words := unsafe.Slice((*uint64)(p), n/8)
	for i := range words {
		words[i] = patternWord(id, uint64(i))
	}
	for k := n &^ 7; k < n; k++ {
		*(*byte)(unsafe.Add(p, k)) = byte(patternWord(id, uint64(k)))
	}
}

func findPatternError(p unsafe.Pointer, n int, id uint64) int {
	words := unsafe.Slice((*uint64)(p), n/8)
	for i, x := range words {
		if x != patternWord(id, uint64(i)) {
			return i * 8
		}
	}
	for k := n &^ 7; k < n; k++ {
		if *(*byte)(unsafe.Add(p, k)) != byte(patternWord(id, uint64(k))) {
			return k
		}
	}
	return -1
}

func patternWord(id, i uint64) uint64 {
	x := id*0x9E3779B97F4A7C15 ^ (i+1)*0xBF58476D1CE4E5B9
	x ^= x >> 31
	return x | 1 // never zero, so a cleared word is always noticed
}

// statsIdentities checks the Stats identities that hold when the heap is
// quiescent.
func statsIdentities(st Stats) error {
	var errs []error
	if st.HeapSys != st.HeapInuse+st.HeapIdle {
		errs = append(errs, fmt.Errorf("HeapSys %d != HeapInuse %d + HeapIdle %d", st.HeapSys, st.HeapInuse, st.HeapIdle))
	}
	if st.HeapReleased > st.HeapIdle {
		errs = append(errs, fmt.Errorf("HeapReleased %d > HeapIdle %d", st.HeapReleased, st.HeapIdle))
	}
	if st.Mallocs-st.Frees != st.HeapObjects {
		errs = append(errs, fmt.Errorf("Mallocs %d - Frees %d != HeapObjects %d", st.Mallocs, st.Frees, st.HeapObjects))
	}
	if st.HeapAlloc > st.HeapInuse {
		errs = append(errs, fmt.Errorf("HeapAlloc %d > HeapInuse %d", st.HeapAlloc, st.HeapInuse))
	}
	if st.Committed != st.HeapSys-st.HeapReleased {
		errs = append(errs, fmt.Errorf("Committed %d != HeapSys %d - HeapReleased %d", st.Committed, st.HeapSys, st.HeapReleased))
	}
	if st.HeapSys > st.Reserved {
		errs = append(errs, fmt.Errorf("HeapSys %d > Reserved %d", st.HeapSys, st.Reserved))
	}
	var objs, alloc, mallocs, frees uint64
	for cl, c := range st.Classes {
		if cl == 0 {
			continue
		}
		if c.Objects != c.Mallocs-c.Frees {
			errs = append(errs, fmt.Errorf("class %d: Objects %d != Mallocs %d - Frees %d", cl, c.Objects, c.Mallocs, c.Frees))
		}
		if c.Objects > 0 && c.Spans == 0 {
			errs = append(errs, fmt.Errorf("class %d: %d objects in no span", cl, c.Objects))
		}
		objs += c.Objects
		alloc += c.Objects * c.Size
		mallocs += c.Mallocs
		frees += c.Frees
	}
	if objs+st.LargeObjects+st.GuardedObjects != st.HeapObjects || alloc+st.LargeAlloc+st.GuardedAlloc != st.HeapAlloc {
		errs = append(errs, fmt.Errorf("classes sum to %d objects, %d bytes (+%d large, %d bytes; +%d guarded, %d bytes); totals %d, %d",
			objs, alloc, st.LargeObjects, st.LargeAlloc, st.GuardedObjects, st.GuardedAlloc, st.HeapObjects, st.HeapAlloc))
	}
	if mallocs > st.Mallocs || frees > st.Frees {
		errs = append(errs, fmt.Errorf("class counters %d/%d exceed totals %d/%d", mallocs, frees, st.Mallocs, st.Frees))
	}
	return errors.Join(errs...)
}

// residentBytes returns the process's resident set size in bytes, from
// /proc/self/statm.
func residentBytes(t testing.TB) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skipf("no /proc/self/statm: %v", err)
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		t.Fatalf("statm: %q", b)
	}
	n, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		t.Fatalf("statm: %v", err)
	}
	return n * uint64(os.Getpagesize())
}

// allocFreer is what Heap and Cache have in common.
type allocFreer interface {
	Alloc(int) (unsafe.Pointer, error)
	Free(unsafe.Pointer) error
}

// quiet turns the background scavenger off, for tests that compare whole
// Stats snapshots: its polling updates ScavengeMaxLockHold at any time.
func quiet(cfg Config) Config {
	cfg.ScavengeDelay = -1
	return cfg
}

// publishCache publishes c's batch of remote frees (remotefree.go), as
// its next slow path would; c must not be in use meanwhile.
func publishCache(t testing.TB, c *Cache) {
	t.Helper()
	if bad := c.h.publishSlow(c.takeRemote()); bad.N > 0 {
		t.Fatalf("publishing a cache's batch: %s", bad.Message())
	}
}

// publishBatches publishes every per-P cache's batch of remote frees
// (remotefree.go), for tests that free through Heap.Free and then count
// spans: a batch is published when it makes its span due, but a goroutine
// moved to another P between frees leaves the first P's batch holding
// some of a span's frees until that P allocates again. Call it only while
// no other goroutine uses the heap.
func publishBatches(t testing.TB, h *Heap) {
	t.Helper()
	for _, c := range h.perPCaches() {
		lockDropped(c)
		b := c.takeRemote()
		unlockDropped(c)
		if bad := h.publishSlow(b); bad.N > 0 {
			t.Fatalf("publishing a per-P batch: %s", bad.Message())
		}
	}
}
