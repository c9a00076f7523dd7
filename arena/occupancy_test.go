package arena

import (
	"testing"
	"unsafe"

	"github.com/offheap/offheap/sizeclasses"
)

// TestSpanOccupancyStats fills five spans of one class through a Cache,
// frees a different share of each locally, hands them back with Close and
// checks that Stats files each span in the bucket of its fill, counts the
// spans while the cache holds them, and prices the sparse one. Remote
// frees into the full span then move it to the fullest partial bucket
// once relistAt of them are pending, not before.
func TestSpanOccupancyStats(t *testing.T) {
	h := newTestHeap(t, quiet(Config{Reserve: 64 << 20}))
	const size = 64
	cl := sizeclasses.SizeToClass(size)
	nobj := int(sizeclasses.Objects(cl))
	spanBytes := uintptr(sizeclasses.Pages(cl)) * 8192
	c := h.NewCache()
	bySpan := map[uintptr][]unsafe.Pointer{}
	var order []uintptr
	for range 5 * nobj {
		p, err := c.Alloc(size)
		if err != nil {
			t.Fatal(err)
		}
		base := uintptr(p) - (uintptr(p)-h.base)%spanBytes
		if bySpan[base] == nil {
			order = append(order, base)
		}
		bySpan[base] = append(bySpan[base], p)
	}
	if len(order) != 5 {
		t.Fatalf("%d objects of %d bytes landed in %d spans, want 5", 5*nobj, size, len(order))
	}
	st := h.Stats()
	if st.SpansCached != 5 || st.Classes[cl].SpansCached != 5 || st.SpanOccupancy != [SpanOccupancyBuckets]uint64{} {
		t.Fatalf("cache holds 5 spans: SpansCached %d (class %d), occupancy %v",
			st.SpansCached, st.Classes[cl].SpansCached, st.SpanOccupancy)
	}
	// Keep 10 %, 30 %, 60 %, 90 % and 100 % of each span's objects.
	keep := []int{nobj / 10, nobj * 3 / 10, nobj * 6 / 10, nobj * 9 / 10, nobj}
	for i, base := range order {
		for _, p := range bySpan[base][keep[i]:] {
			if err := c.Free(p); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	st = h.Stats()
	want := [SpanOccupancyBuckets]uint64{1, 1, 1, 1, 1}
	if st.SpanOccupancy != want || st.Classes[cl].SpanOccupancy != want || st.SpansCached != 0 {
		t.Fatalf("after Close: occupancy %v (class %v), cached %d; want %v, 0",
			st.SpanOccupancy, st.Classes[cl].SpanOccupancy, st.SpansCached, want)
	}
	if st.SparseSpanBytes != uint64(spanBytes) {
		t.Fatalf("SparseSpanBytes %d, want one span, %d", st.SparseSpanBytes, spanBytes)
	}
	verifyOK(t, h)

	// Remote frees into the full span: it stays full (its frees wait)
	// until relistAt of them are pending, then moves to the partial
	// bucket of its live objects. They go through one Cache, whose batch
	// holds them (remotefree.go) until it is published.
	remote := h.NewCache()
	defer remote.Close()
	full := bySpan[order[4]]
	at := int(relistAt(h.spans.Lookup(uintptr(full[0]))))
	if at < 2 {
		t.Fatalf("relistAt %d for a %d-object span: nothing to batch", at, nobj)
	}
	for i, p := range full[:at] {
		if err := remote.Free(p); err != nil {
			t.Fatal(err)
		}
		want = [SpanOccupancyBuckets]uint64{1, 1, 1, 1, 1}
		if st = h.Stats(); st.SpanOccupancy != want {
			t.Fatalf("after %d remote frees into the full span (relistAt %d): occupancy %v, want %v",
				i+1, at, st.SpanOccupancy, want)
		}
		verifyOK(t, h)
	}
	publishCache(t, remote)
	want = [SpanOccupancyBuckets]uint64{1, 1, 1, 2, 0}
	if st = h.Stats(); st.SpanOccupancy != want {
		t.Fatalf("after publishing %d remote frees into the full span (relistAt %d): occupancy %v, want %v",
			at, at, st.SpanOccupancy, want)
	}
	verifyOK(t, h)
	if OccupancyFull != 4 || SpanOccupancyBuckets != 5 {
		t.Fatalf("bucket names assume quarters: full %d of %d", OccupancyFull, SpanOccupancyBuckets)
	}
}
