package main

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"strings"

	"github.com/offheap/offheap/arena"
	"github.com/offheap/offheap/internal/heapview"
)

const (
	// pagesPerGlyph is how many pages one character of the terminal map
	// stands for: a 512-page chunk is a row of 64 characters.
	pagesPerGlyph = 8

	// PNG geometry: pngPageWidth pixels per page across, pngRowHeight
	// pixels per chunk down, rows pngRowGap apart.
	pngPageWidth = 2
	pngRowHeight = 12
	pngRowGap    = 2
)

// The glyphs of the terminal map, by how much of a glyph's pages is in use
// (or, with none in use, whether any is committed).
const (
	glyphAllInUse  = '█'
	glyphMostInUse = '▓'
	glyphSomeInUse = '▒'
	glyphFree      = '░' // none in use, some free and committed
	glyphReleased  = '·' // all released
	glyphPastEnd   = ' ' // beyond the grown heap
)

// The PNG palette: index 0 is the background (gaps, past the end).
var pngPalette = color.Palette{
	color.RGBA{0xff, 0xff, 0xff, 0xff}, // background
	color.RGBA{0x2b, 0x5c, 0xb8, 0xff}, // in use: blue
	color.RGBA{0xf0, 0xa8, 0x30, 0xff}, // free, committed: amber
	color.RGBA{0xd8, 0xd8, 0xd8, 0xff}, // released: light grey
}

const (
	pngBackground = iota
	pngInUse
	pngFree
	pngReleased
)

type stateCounts struct{ inUse, free, released int }

func countStates(states []arena.PageState) stateCounts {
	var c stateCounts
	for _, s := range states {
		switch s {
		case arena.PageInUse:
			c.inUse++
		case arena.PageFree:
			c.free++
		default:
			c.released++
		}
	}
	return c
}

// chunks returns how many chunk rows n pages take.
func chunks(n int) int { return (n + arena.ChunkPages - 1) / arena.ChunkPages }

// glyph draws a run of pages as one character.
func glyph(states []arena.PageState) rune {
	if len(states) == 0 {
		return glyphPastEnd
	}
	c := countStates(states)
	switch {
	case c.inUse == len(states):
		return glyphAllInUse
	case 2*c.inUse >= len(states):
		return glyphMostInUse
	case c.inUse > 0:
		return glyphSomeInUse
	case c.free > 0:
		return glyphFree
	}
	return glyphReleased
}

// writeTextMap draws the page map with one row per chunk.
func writeTextMap(w io.Writer, source string, states []arena.PageState) error {
	ew := &heapview.ErrWriter{W: w}
	c := countStates(states)
	ew.Printf("page map of %s: %d chunks of %d pages (%s), %d pages in use, %d free, %d released\n",
		source, chunks(len(states)), arena.ChunkPages, heapview.Bytes(arena.ChunkPages*arena.PageSize),
		c.inUse, c.free, c.released)
	ew.Printf("one character = %d pages: %c all in use  %c half or more  %c some  %c free (committed)  %c released\n",
		pagesPerGlyph, glyphAllInUse, glyphMostInUse, glyphSomeInUse, glyphFree, glyphReleased)
	var row strings.Builder
	for ch := 0; ch*arena.ChunkPages < len(states); ch++ {
		lo := ch * arena.ChunkPages
		chunk := states[lo:min(lo+arena.ChunkPages, len(states))]
		row.Reset()
		for g := 0; g < arena.ChunkPages; g += pagesPerGlyph {
			row.WriteRune(glyph(chunk[min(g, len(chunk)):min(g+pagesPerGlyph, len(chunk))]))
		}
		cc := countStates(chunk)
		ew.Printf("%5d |%s| %3d%% in use\n", ch, row.String(), 100*cc.inUse/arena.ChunkPages)
	}
	return ew.Err
}

// writePNGMap draws the page map as a PNG: one row per chunk, one pixel
// per page, a colour per state.
func writePNGMap(w io.Writer, states []arena.PageState) error {
	rows := max(chunks(len(states)), 1)
	img := image.NewPaletted(image.Rect(0, 0, arena.ChunkPages*pngPageWidth, rows*(pngRowHeight+pngRowGap)-pngRowGap), pngPalette)
	for i, s := range states {
		idx := uint8(pngReleased)
		switch s {
		case arena.PageInUse:
			idx = pngInUse
		case arena.PageFree:
			idx = pngFree
		}
		x0, y0 := (i%arena.ChunkPages)*pngPageWidth, (i/arena.ChunkPages)*(pngRowHeight+pngRowGap)
		for y := y0; y < y0+pngRowHeight; y++ {
			for x := x0; x < x0+pngPageWidth; x++ {
				img.SetColorIndex(x, y, idx)
			}
		}
	}
	if err := png.Encode(w, img); err != nil {
		return fmt.Errorf("writing PNG: %w", err)
	}
	return nil
}
