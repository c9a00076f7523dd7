package heapview

import (
	"slices"
	"strings"
	"testing"

	"github.com/offheap/offheap/arena"
)

func TestPageMapRoundTrip(t *testing.T) {
	const u, f, r = arena.PageInUse, arena.PageFree, arena.PageReleased
	states := []arena.PageState{u, u, u, f, r, r, u}
	m := EncodePageMap(states)
	if m.Runs != "3u1f2r1u" || m.Pages != 7 || m.ChunkPages != ChunkPages || m.PageSize != arena.PageSize {
		t.Fatalf("encoded %+v", m)
	}
	got, err := m.Decode()
	if err != nil || !slices.Equal(got, states) {
		t.Fatalf("decoded %v, %v", got, err)
	}
	if m := EncodePageMap(nil); m.Runs != "" {
		t.Fatalf("empty map encodes as %+v", m)
	} else if got, err := m.Decode(); err != nil || len(got) != 0 {
		t.Fatalf("empty map decodes as %v, %v", got, err)
	}
}

func TestPageMapDecodeErrors(t *testing.T) {
	ok := PageMap{PageSize: 8192, ChunkPages: 512}
	for _, tc := range []struct {
		pages int
		runs  string
		msg   string
	}{
		{3, "3x", "unknown page state"},
		{3, "u", "bad run"},
		{3, "3", "bad run"},
		{3, "0u3f", "bad run count"},
		{3, "2u2f", "bad run count"},
		{3, "2u", "runs cover 2 pages"},
		{MaxMapPages + 1, "", "out of range"},
		{-1, "", "out of range"},
	} {
		m := ok
		m.Pages, m.Runs = tc.pages, tc.runs
		if _, err := m.Decode(); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("Decode(%d, %q) = %v, want %q", tc.pages, tc.runs, err, tc.msg)
		}
	}
	if _, err := (PageMap{Pages: 1, Runs: "1u"}).Decode(); err == nil {
		t.Error("zero geometry accepted")
	}
}

func TestPageMapLive(t *testing.T) {
	h, err := arena.NewHeap(arena.Config{Reserve: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if _, err := h.Alloc(100 << 10); err != nil {
		t.Fatal(err)
	}
	states := h.PageMap(nil)
	got, err := EncodePageMap(states).Decode()
	if err != nil || !slices.Equal(got, states) || !slices.Contains(got, arena.PageInUse) {
		t.Fatalf("live map: %d states, err %v", len(got), err)
	}
}

func TestUnits(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 64 << 30: "64.0 GiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
	for n, want := range map[uint64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567"} {
		if got := Count(n); got != want {
			t.Errorf("Count(%d) = %q, want %q", n, got, want)
		}
	}
	if got := Percent(0.125); got != "12.5 %" {
		t.Errorf("Percent = %q", got)
	}
}
