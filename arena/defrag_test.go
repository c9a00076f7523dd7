package arena

import (
	"math/rand/v2"
	"testing"
	"unsafe"
)

// defragObj is the object size of the defrag tests: 128 bytes, 64 to a
// span, like a small cache entry.
const defragObj = 128

// defragScatter allocates n objects of defragObj bytes through a few
// Caches, each filled with its index's pattern, frees all but one in keep
// at random through the Heap, and closes the Caches so that every span is
// central. It returns the survivors and their pattern ids.
func defragScatter(t *testing.T, h *Heap, n, keep int) ([]unsafe.Pointer, []uint64) {
	t.Helper()
	cs := []*Cache{h.NewCache(), h.NewCache(), h.NewCache()}
	ps := make([]unsafe.Pointer, n)
	for i := range ps {
		p, err := cs[i%len(cs)].Alloc(defragObj)
		if err != nil {
			t.Fatalf("Alloc %d: %v", i, err)
		}
		writePattern(p, defragObj, uint64(i))
		ps[i] = p
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var live []unsafe.Pointer
	var ids []uint64
	for i, p := range ps {
		if rng.IntN(keep) == 0 {
			live = append(live, p)
			ids = append(ids, uint64(i))
			continue
		}
		if err := h.Free(p); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range cs {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return live, ids
}

// After a 90 % delete most survivors sit in sparse central spans: the
// hint says move them; moving them (alloc, copy, free) empties those
// spans, HeapInuse falls to near HeapAlloc, and the scavenger gives the
// pages back to the kernel (RSS from /proc/self/statm).
func TestDefragHintRelocate(t *testing.T) {
	n := 128 << 10 // 16 MiB of objects: a second or two even with -race
	h := newTestHeap(t, quiet(Config{Reserve: 1 << 30}))
	live, ids := defragScatter(t, h, n, 10)

	hinted := 0
	for _, p := range live {
		if h.DefragHint(p) {
			hinted++
		}
	}
	if hinted < len(live)*9/10 {
		t.Fatalf("DefragHint true for %d of %d survivors, want at least 90 %%", hinted, len(live))
	}
	before := h.Stats()
	if before.HeapInuse < 4*before.HeapAlloc {
		t.Fatalf("scatter left HeapInuse %d, HeapAlloc %d: not fragmented", before.HeapInuse, before.HeapAlloc)
	}
	h.Scavenge() // what is free already goes first, so the drop below is the moves'
	rss0 := residentBytes(t)

	moved := 0
	for i, p := range live {
		if !h.DefragHint(p) {
			continue
		}
		q, err := h.Alloc(defragObj)
		if err != nil {
			t.Fatal(err)
		}
		copy(unsafe.Slice((*byte)(q), defragObj), unsafe.Slice((*byte)(p), defragObj))
		if err := h.Free(p); err != nil {
			t.Fatal(err)
		}
		live[i] = q
		moved++
	}
	after := h.Stats()
	for i, p := range live {
		if off := findPatternError(p, defragObj, ids[i]); off >= 0 {
			t.Fatalf("survivor %d corrupted at byte %d after the moves", i, off)
		}
	}
	verifyOK(t, h)
	ratio := float64(after.HeapInuse) / float64(after.HeapAlloc)
	t.Logf("%d survivors, %d hinted, %d moved; HeapInuse %d KiB -> %d KiB, HeapAlloc %d KiB; ratio %.2f -> %.2f",
		len(live), hinted, moved, before.HeapInuse>>10, after.HeapInuse>>10, after.HeapAlloc>>10,
		float64(before.HeapInuse)/float64(before.HeapAlloc), ratio)
	// The moves allocate through the per-P caches, each of which may hold
	// up to ownedBytes of partly filled spans of the class (cache.go):
	// that hoard is allowed on top. In the offheap_nolinkname build
	// (perPByP false) a goroutine's allocations land on a random per-P
	// cache, so both caches refill, taking sparse central spans as they
	// do; the survivors in a span a cache owns get DefragHint false when
	// the loop reaches them and stay. Over 40 runs each the ratio was
	// 1.31-1.60 there and 1.00 in the normal build (1.00-1.01 with -race),
	// so the bound is 1.5 here and 1.75 there.
	hoard := uint64(len(h.perPCaches())) * ownedBytes
	bound := 1.5
	if !perPByP {
		bound = 1.75
	}
	if float64(after.HeapInuse) > bound*float64(after.HeapAlloc)+float64(hoard) {
		t.Fatalf("after the moves HeapInuse/HeapAlloc = %.2f (%d / %d), want <= %.2f beyond the caches' %d bytes",
			ratio, after.HeapInuse, after.HeapAlloc, bound, hoard)
	}
	// Moving again finds almost nothing to do: the survivors are packed.
	again := 0
	for _, p := range live {
		if h.DefragHint(p) {
			again++
		}
	}
	if again > len(live)/10 {
		t.Fatalf("after one pass DefragHint still true for %d of %d", again, len(live))
	}

	rel := h.Scavenge()
	rss1 := residentBytes(t)
	freed := before.HeapInuse - after.HeapInuse
	t.Logf("Scavenge released %d KiB; RSS %d KiB -> %d KiB", rel>>10, rss0>>10, rss1>>10)
	if rel < freed*9/10 {
		t.Fatalf("Scavenge released %d bytes of the %d the moves freed", rel, freed)
	}
	// RSS is the whole process's (the Go heap moves too): ask for most of
	// what was released, not all of it.
	if rss0 < rss1 || rss0-rss1 < rel*3/4 {
		t.Fatalf("RSS %d -> %d bytes, want a drop of most of the %d released", rss0, rss1, rel)
	}
	for _, p := range live {
		if err := h.Free(p); err != nil {
			t.Fatal(err)
		}
	}
	verifyOK(t, h)
}

// The hint is false for objects in full central spans, in spans a cache
// owns, for large objects and for anything that is not a live object,
// and after Close; none of these panic or change the heap.
func TestDefragHintFalse(t *testing.T) {
	h := newTestHeap(t, quiet(Config{Reserve: 256 << 20}))
	c := h.NewCache()
	const perSpan = 8192 / defragObj
	var ps []unsafe.Pointer
	for range 4 * perSpan {
		p, err := c.Alloc(defragObj)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	// Owned by c: new allocations come from its span.
	if h.DefragHint(ps[len(ps)-1]) {
		t.Error("DefragHint true in a cache-owned span")
	}
	// Free most of the last span's objects while c still owns it: still
	// no (the owner allocates from it next).
	for _, p := range ps[len(ps)-perSpan+1:] {
		if err := h.Free(p); err != nil {
			t.Fatal(err)
		}
	}
	ps = ps[:len(ps)-perSpan+1]
	if h.DefragHint(ps[len(ps)-1]) {
		t.Error("DefragHint true in a sparse span a cache owns")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// The frees wait in the per-P cache's batch (remotefree.go) until
	// published: a span's occupancy counts them only then.
	publishBatches(t, h)
	// Now central: the full spans say no, the sparse one yes.
	for i, p := range ps[:3*perSpan] {
		if h.DefragHint(p) {
			t.Fatalf("DefragHint true for object %d of a full central span", i)
		}
	}
	if !h.DefragHint(ps[len(ps)-1]) {
		t.Error("DefragHint false for the one live object of a central span")
	}
	if c.DefragHint(ps[len(ps)-1]) {
		t.Error("closed Cache's DefragHint true")
	}

	large, err := h.Alloc(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	freed, err := h.Alloc(defragObj)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Free(freed); err != nil {
		t.Fatal(err)
	}
	var goVar [64]byte
	bad := map[string]unsafe.Pointer{
		"large":    large,
		"nil":      nil,
		"interior": unsafe.Add(ps[0], 8),
		"freed":    freed,
		"go heap":  unsafe.Pointer(&goVar),
	}
	before := h.Stats()
	for name, p := range bad {
		if h.DefragHint(p) {
			t.Errorf("DefragHint(%s) true", name)
		}
	}
	if after := h.Stats(); after.HeapAlloc != before.HeapAlloc || after.HeapObjects != before.HeapObjects ||
		after.HeapInuse != before.HeapInuse || after.Mallocs != before.Mallocs || after.Frees != before.Frees {
		t.Errorf("DefragHint changed Stats:\n%+v\n%+v", before, after)
	}
	verifyOK(t, h)
	for _, p := range append(ps, large) {
		if err := h.Free(p); err != nil {
			t.Fatal(err)
		}
	}
	keep, err := h.Alloc(defragObj)
	if err != nil {
		t.Fatal(err)
	}
	_ = keep // dangles after Close; only its address is used
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if h.DefragHint(keep) {
		t.Error("DefragHint true after Close")
	}
}
