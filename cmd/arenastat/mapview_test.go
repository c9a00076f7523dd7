package main

import (
	"bytes"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/offheap/offheap/arena"
)

// fixedMap is two chunks: the first half (and 4 pages more) in use, then
// a free stretch, then released pages; the second chunk released but for
// 2 pages in use.
func fixedMap() []arena.PageState {
	s := make([]arena.PageState, 2*arena.ChunkPages)
	for i := range s {
		switch {
		case i < 256:
			s[i] = arena.PageInUse
		case i < 256+4:
			s[i] = arena.PageInUse // a glyph of 8 with 4 in use: "▓"
		case i < 384:
			s[i] = arena.PageFree
		case i >= arena.ChunkPages && i < arena.ChunkPages+2:
			s[i] = arena.PageInUse // 2 of 8 in use: "▒"
		default:
			s[i] = arena.PageReleased
		}
	}
	return s
}

func TestGlyph(t *testing.T) {
	const u, f, r = arena.PageInUse, arena.PageFree, arena.PageReleased
	for _, tc := range []struct {
		in   []arena.PageState
		want rune
	}{
		{[]arena.PageState{u, u}, glyphAllInUse},
		{[]arena.PageState{u, f}, glyphMostInUse},
		{[]arena.PageState{u, f, r}, glyphSomeInUse},
		{[]arena.PageState{f, r}, glyphFree},
		{[]arena.PageState{r, r}, glyphReleased},
		{nil, glyphPastEnd},
	} {
		if got := glyph(tc.in); got != tc.want {
			t.Errorf("glyph(%v) = %c, want %c", tc.in, got, tc.want)
		}
	}
}

func TestGoldenTextMap(t *testing.T) {
	var b bytes.Buffer
	if err := writeTextMap(&b, "a fixed map", fixedMap()); err != nil {
		t.Fatal(err)
	}
	golden(t, "map.text.golden", b.Bytes())
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines, want header, legend and 2 rows", len(lines))
	}
}

func TestPNGMap(t *testing.T) {
	var b bytes.Buffer
	states := fixedMap()
	if err := writePNGMap(&b, states); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&b)
	if err != nil {
		t.Fatal(err)
	}
	wantW, wantH := arena.ChunkPages*pngPageWidth, 2*(pngRowHeight+pngRowGap)-pngRowGap
	if r := img.Bounds(); r.Dx() != wantW || r.Dy() != wantH {
		t.Fatalf("PNG %v, want %dx%d", r, wantW, wantH)
	}
	at := func(page int) int {
		x := (page % arena.ChunkPages) * pngPageWidth
		y := page / arena.ChunkPages * (pngRowHeight + pngRowGap)
		return pngPalette.Index(img.At(x, y))
	}
	for page, want := range map[int]int{0: pngInUse, 300: pngFree, 400: pngReleased, arena.ChunkPages + 1: pngInUse} {
		if got := at(page); got != want {
			t.Errorf("page %d drawn in colour %d, want %d", page, got, want)
		}
	}
	if got := pngPalette.Index(img.At(0, pngRowHeight)); got != pngBackground {
		t.Errorf("gap between rows drawn in colour %d", got)
	}
	// An empty map is still a valid image.
	b.Reset()
	if err := writePNGMap(&b, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(&b); err != nil {
		t.Fatal(err)
	}
}

// TestMapHostilePageMap: the 75-byte reply that claimed 1 TiB of heap (and
// once cost 3.8 GB and 75 s to draw) is refused quickly and cheaply, and
// no picture is written.
func TestMapHostilePageMap(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"page_size":8192,"chunk_pages":512,"pages":134217728,"runs":"134217728r"}`, "out of range"},
		{`{"page_size":4096,"chunk_pages":512,"pages":1,"runs":"1u"}`, "4096-byte pages"},
		{`{"page_size":8192,"chunk_pages":1024,"pages":1,"runs":"1u"}`, "chunks of 1024"},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(tc.body))
		}))
		png := filepath.Join(t.TempDir(), "map.png")
		var stdout, stderr bytes.Buffer
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		code := realMain([]string{"map", "-o", png, srv.URL}, &stdout, &stderr)
		took := time.Since(start)
		runtime.ReadMemStats(&after)
		srv.Close()
		if code != exitBad || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%s: exit %d, stderr %q, want %q", tc.body, code, stderr.String(), tc.want)
		}
		if got := after.TotalAlloc - before.TotalAlloc; got > 4<<20 {
			t.Errorf("%s: allocated %d bytes before refusing", tc.body, got)
		}
		if took > 2*time.Second {
			t.Errorf("%s: took %s to refuse", tc.body, took)
		}
		if _, err := os.Stat(png); err == nil {
			t.Errorf("%s: wrote %s", tc.body, png)
		}
	}
}
