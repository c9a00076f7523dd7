package heapview

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"unsafe"

	"github.com/offheap/offheap/arena"
)

// TestSpanOccupancyLive: a heap whose objects were 90 % freed through
// Caches that then closed (handing their spans to the central lists at
// 10 % full) shows, in its snapshot, most central spans in the under-25 %
// bucket and their bytes as sparse, the same figures Stats has; the table
// and Prometheus forms carry them.
func TestSpanOccupancyLive(t *testing.T) {
	h, err := arena.NewHeap(arena.Config{Reserve: 64 << 20, ScavengeDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	// caches Caches each fill spansEach spans of size-byte objects: fewer
	// than a Cache keeps per class (8 spans, 64 KiB), so each Cache owns
	// its spans until Close and frees into them locally.
	const (
		size      = 64
		caches    = 6
		spansEach = 4
		perSpan   = 8192 / size
	)
	// All Caches fill before any closes: a Cache refills from the
	// central lists, so one opened after another closed would fill the
	// sparse spans back up.
	cs := make([]*arena.Cache, caches)
	objs := make([][]unsafe.Pointer, caches)
	for i := range cs {
		cs[i] = h.NewCache()
		for range spansEach * perSpan {
			p, err := cs[i].Alloc(size)
			if err != nil {
				t.Fatal(err)
			}
			*(*byte)(p) = 1
			objs[i] = append(objs[i], p)
		}
	}
	var kept []unsafe.Pointer
	for i, c := range cs {
		for j, p := range objs[i] {
			if j%10 == 0 { // keep one in ten: each span stays ~10 % full
				kept = append(kept, p)
				continue
			}
			if err := c.Free(p); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	s, st := Take(h), h.Stats()
	o := s.SpanOccupancy
	if o != OccupancyOf(st.SpanOccupancy) || s.SpansCached != st.SpansCached || s.SparseSpanBytes != st.SparseSpanBytes {
		t.Fatalf("snapshot occupancy %+v, cached %d, sparse %d; Stats %v, %d, %d",
			o, s.SpansCached, s.SparseSpanBytes, st.SpanOccupancy, st.SpansCached, st.SparseSpanBytes)
	}
	if o.Total() < caches*spansEach/2 || 2*o.Under25 <= o.Total() || s.SparseSpanBytes == 0 {
		t.Fatalf("after freeing 90 %% of %d spans through closed Caches: occupancy %+v, cached %d, sparse %d bytes",
			caches*spansEach, o, s.SpansCached, s.SparseSpanBytes)
	}
	t.Logf("occupancy %+v, cached %d, sparse %s", o, s.SpansCached, Bytes(s.SparseSpanBytes))
	var cv *ClassView
	for i := range s.Classes {
		if s.Classes[i].Size == size {
			cv = &s.Classes[i]
		}
	}
	if cv == nil || cv.SpanBytes == 0 || cv.SpanOccupancy.Under25 == 0 ||
		s.SparseSpanBytes < cv.SpanOccupancy.Under25*cv.SpanBytes {
		t.Fatalf("class of %d bytes: %+v; sparse %d bytes", size, cv, s.SparseSpanBytes)
	}

	var table, prom bytes.Buffer
	if err := WriteTable(&table, s); err != nil {
		t.Fatal(err)
	}
	if err := WriteProm(&prom, Series{Snap: s}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		fmt.Sprintf("<25%%: %d ", o.Under25),
		fmt.Sprintf("%14d  held by central spans under 25 %% full", s.SparseSpanBytes),
	} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	for _, want := range []string{
		fmt.Sprintf("offheap_span_occupancy_spans{bucket=\"under25\"} %d\n", o.Under25),
		fmt.Sprintf("offheap_sparse_span_bytes %d\n", s.SparseSpanBytes),
		fmt.Sprintf("offheap_spans_cached %d\n", s.SpansCached),
	} {
		if !strings.Contains(prom.String(), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	for _, p := range kept {
		if err := h.Free(p); err != nil {
			t.Fatal(err)
		}
	}
}
