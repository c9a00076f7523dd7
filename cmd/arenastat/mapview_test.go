package main

import (
	"bytes"
	"image/png"
	"strings"
	"testing"

	"github.com/offheap/offheap/arena"
	"github.com/offheap/offheap/internal/heapview"
)

// fixedMap is two chunks: the first half (and 4 pages more) in use, then
// a free stretch, then released pages; the second chunk released but for
// 2 pages in use.
func fixedMap() []arena.PageState {
	s := make([]arena.PageState, 2*heapview.ChunkPages)
	for i := range s {
		switch {
		case i < 256:
			s[i] = arena.PageInUse
		case i < 256+4:
			s[i] = arena.PageInUse // a glyph of 8 with 4 in use: "▓"
		case i < 384:
			s[i] = arena.PageFree
		case i >= heapview.ChunkPages && i < heapview.ChunkPages+2:
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
	wantW, wantH := heapview.ChunkPages*pngPageWidth, 2*(pngRowHeight+pngRowGap)-pngRowGap
	if r := img.Bounds(); r.Dx() != wantW || r.Dy() != wantH {
		t.Fatalf("PNG %v, want %dx%d", r, wantW, wantH)
	}
	at := func(page int) int {
		x := (page % heapview.ChunkPages) * pngPageWidth
		y := page / heapview.ChunkPages * (pngRowHeight + pngRowGap)
		return pngPalette.Index(img.At(x, y))
	}
	for page, want := range map[int]int{0: pngInUse, 300: pngFree, 400: pngReleased, heapview.ChunkPages + 1: pngInUse} {
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
