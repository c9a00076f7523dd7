package arenahttp

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"unsafe"

	"github.com/offheap/offheap/arena"
)

// BenchmarkServeSnapshot measures one JSON scrape of a heap with 256 MiB
// of touched objects, the case where reading /proc/self/smaps (a walk of
// every mapping's page tables) dominates.
func BenchmarkServeSnapshot(b *testing.B) {
	h, err := arena.NewHeap(arena.Config{Reserve: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { h.Close() })
	const objSize = 1 << 20
	for range 256 {
		p, err := h.Alloc(objSize)
		if err != nil {
			b.Fatal(err)
		}
		s := unsafe.Slice((*byte)(p), objSize)
		for i := 0; i < len(s); i += 4096 {
			s[i] = 1
		}
	}
	x := New(h)
	req := httptest.NewRequest(http.MethodGet, mount+"?format=json", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		x.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
}
