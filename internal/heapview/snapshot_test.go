package heapview

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/offheap/offheap/arena"
)

func TestParseSnapshot(t *testing.T) {
	real, err := os.ReadFile("testdata/snapshot.json.golden")
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSnapshot(real)
	if err != nil {
		t.Fatalf("the served form refused: %v", err)
	}
	if want := fixed(); s.Mallocs != want.Mallocs || s.Reserved != want.Reserved || len(s.Classes) != len(want.Classes) {
		t.Fatalf("parsed %+v", s)
	}
	// What a newer server may add is ignored, not refused.
	var m map[string]any
	json.Unmarshal(real, &m)
	m["a_figure_from_the_future"] = 1
	newer, _ := json.Marshal(m)
	if _, err := ParseSnapshot(newer); err != nil {
		t.Fatalf("an added field refused: %v", err)
	}
	// A heap with no allocations yet serves "classes": null.
	m["classes"] = nil
	empty, _ := json.Marshal(m)
	if _, err := ParseSnapshot(empty); err != nil {
		t.Fatalf("a snapshot with no classes refused: %v", err)
	}
	delete(m, "mallocs")
	partial, _ := json.Marshal(m)

	for _, bad := range []string{`{}`, `null`, `[]`, `"a string"`, `42`, `garbage`, ``, `{"mallocs":1}`, string(partial),
		`{"reserved_bytes":"lots"}`, string(real) + ` {}`} {
		_, err := ParseSnapshot([]byte(bad))
		if !errors.Is(err, ErrNotSnapshot) {
			t.Errorf("ParseSnapshot(%.40q) = %v, want ErrNotSnapshot", bad, err)
		}
	}
	if _, err := ParseSnapshot(partial); err == nil || !strings.Contains(err.Error(), `"mallocs"`) {
		t.Errorf("missing field not named: %v", err)
	}
}

// TestTakerReusesRSS: within its TTL a Taker reuses the resident size but
// reads every other figure fresh; past it, it reads smaps again.
func TestTakerReusesRSS(t *testing.T) {
	h, err := arena.NewHeap(arena.Config{Reserve: 256 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	tk := NewTaker(h)
	tk.ttl = time.Hour
	first := tk.Take()
	if !first.RSSKnown {
		t.Skip("smaps unreadable")
	}
	const size = 16 << 20
	p, err := h.Alloc(size)
	if err != nil {
		t.Fatal(err)
	}
	b := unsafe.Slice((*byte)(p), size)
	for i := 0; i < size; i += 4096 {
		b[i] = 1
	}
	cached := tk.Take()
	if cached.RSS != first.RSS || cached.HeapAlloc < first.HeapAlloc+size {
		t.Fatalf("within the TTL: RSS %d -> %d (want reused), live bytes %d -> %d (want fresh)",
			first.RSS, cached.RSS, first.HeapAlloc, cached.HeapAlloc)
	}
	tk.ttl = 0
	fresh := tk.Take()
	if fresh.RSS < first.RSS+size/2 {
		t.Fatalf("past the TTL: RSS %d -> %d after touching %d bytes", first.RSS, fresh.RSS, size)
	}
	if want, err := ResidentBytes(h.Mappings()); err != nil || fresh.RSS != want {
		t.Fatalf("fresh RSS %d, smaps says %d (%v)", fresh.RSS, want, err)
	}
}
