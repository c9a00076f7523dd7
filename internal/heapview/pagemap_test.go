package heapview

import (
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/offheap/offheap/arena"
)

func TestPageMapRoundTrip(t *testing.T) {
	const u, f, r = arena.PageInUse, arena.PageFree, arena.PageReleased
	states := []arena.PageState{u, u, u, f, r, r, u}
	m := EncodePageMap(states)
	if m.Runs != "3u1f2r1u" || m.Pages != 7 || m.ChunkPages != arena.ChunkPages || m.PageSize != arena.PageSize {
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

// hostilePageMap is 75 bytes that claimed 1 TiB of heap: before the
// bound, decoding it allocated 128 MiB and drawing it 3.8 GB and 75 s.
const hostilePageMap = `{"page_size":8192,"chunk_pages":512,"pages":134217728,"runs":"134217728r"}`

func TestPageMapHostileIsCheap(t *testing.T) {
	var m PageMap
	if err := json.Unmarshal([]byte(hostilePageMap), &m); err != nil {
		t.Fatal(err)
	}
	var err error
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	_, err = m.Decode()
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "limit") || !strings.Contains(err.Error(), strconv.Itoa(MaxMapPages)) {
		t.Fatalf("Decode of %s: %v, want an error naming the limit", hostilePageMap, err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("Decode allocated %d bytes before refusing", got)
	}
	if took > 100*time.Millisecond {
		t.Errorf("Decode took %s before refusing", took)
	}
	if allocs := testing.AllocsPerRun(10, func() { m.Decode() }); allocs > 10 {
		t.Errorf("%v allocations per refused Decode", allocs)
	}
}

func TestPageMapGeometry(t *testing.T) {
	for _, g := range [][2]int{{8192, 512}, {4096, 1}, {1 << 16, 1 << 12}} {
		m := PageMap{PageSize: g[0], ChunkPages: g[1], Pages: 1, Runs: "1u"}
		if _, err := m.Decode(); err != nil {
			t.Errorf("geometry %v refused: %v", g, err)
		}
	}
	for _, g := range [][2]int{{0, 512}, {8192, 0}, {-8192, 512}, {8191, 512}, {8192, 500}, {1 << 40, 512}, {8192, 1 << 30}, {2048, 512}} {
		m := PageMap{PageSize: g[0], ChunkPages: g[1], Pages: 1, Runs: "1u"}
		if _, err := m.Decode(); err == nil || !strings.Contains(err.Error(), "geometry") {
			t.Errorf("geometry %v: %v, want a geometry error", g, err)
		}
	}
}

// TestPageMapRunsBounded: a run count may not run past the declared
// pages, however many digits it has, and the error comes before the run is
// expanded.
func TestPageMapRunsBounded(t *testing.T) {
	m := PageMap{PageSize: 8192, ChunkPages: 512, Pages: 10, Runs: "5u" + strings.Repeat("9", 1<<20) + "r"}
	start := time.Now()
	if _, err := m.Decode(); err == nil || !strings.Contains(err.Error(), "bad run count") {
		t.Fatalf("Decode: %v", err)
	}
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Errorf("refusing a 1 MiB run count took %s", took)
	}
	if msg := fmt.Sprint(m.Decode()); len(msg) > 200 {
		t.Errorf("error quotes %d bytes", len(msg))
	}
}
