package arenahttp

import (
	"fmt"
	"strings"
	"testing"
	"unsafe"

	"github.com/offheap/offheap/arena"
	"github.com/offheap/offheap/internal/heapview"
)

// TestOccupancyFigures: the handler serves the span occupancy histogram,
// cached spans and sparse span bytes as Stats has them, in JSON, text and
// Prometheus form: spans a Cache holds count as cached, and once it
// frees 90 % of their objects and closes they are central and sparse.
func TestOccupancyFigures(t *testing.T) {
	h := quietHeap(t)
	srv := serve(t, New(h))
	snap := func() heapview.Snapshot { return getSnapshot(t, srv) }
	const size, objs = 64, 4 * 8192 / 64 // four spans' worth, fewer than a Cache keeps
	c := h.NewCache()
	var ps []unsafe.Pointer
	for range objs {
		p, err := c.Alloc(size)
		if err != nil {
			t.Fatal(err)
		}
		*(*byte)(p) = 1
		ps = append(ps, p)
	}
	held, st := snap(), h.Stats()
	if held.SpansCached == 0 || held.SpansCached != st.SpansCached || held.SpanOccupancy != heapview.OccupancyOf(st.SpanOccupancy) {
		t.Fatalf("while a Cache holds its spans: served cached %d, occupancy %+v; Stats %d, %v",
			held.SpansCached, held.SpanOccupancy, st.SpansCached, st.SpanOccupancy)
	}
	var kept []unsafe.Pointer
	for i, p := range ps {
		if i%10 == 0 {
			kept = append(kept, p)
		} else if err := c.Free(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	after, st := snap(), h.Stats()
	if after.SpanOccupancy != heapview.OccupancyOf(st.SpanOccupancy) || after.SpansCached != st.SpansCached ||
		after.SparseSpanBytes != st.SparseSpanBytes || after.SparseSpanBytes == 0 ||
		after.SpanOccupancy.Under25 < held.SpansCached/2 {
		t.Fatalf("after freeing 90 %% and Close: served occupancy %+v, cached %d, sparse %d; Stats %v, %d, %d",
			after.SpanOccupancy, after.SpansCached, after.SparseSpanBytes, st.SpanOccupancy, st.SpansCached, st.SparseSpanBytes)
	}
	_, text := get(t, srv.URL+mount+"?format=text")
	_, prom := get(t, srv.URL+mount+"metrics")
	for _, want := range []string{"span occupancy", fmt.Sprintf("%d  held by central spans under 25 %% full", st.SparseSpanBytes)} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q", want)
		}
	}
	for _, want := range []string{
		fmt.Sprintf("offheap_span_occupancy_spans{bucket=\"under25\"} %d\n", st.SpanOccupancy[arena.OccupancyUnder25]),
		fmt.Sprintf("offheap_sparse_span_bytes %d\n", st.SparseSpanBytes),
		"offheap_spans_cached ",
	} {
		if !strings.Contains(prom, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	for _, p := range kept {
		if err := h.Free(p); err != nil {
			t.Fatal(err)
		}
	}
}
