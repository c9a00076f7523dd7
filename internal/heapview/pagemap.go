package heapview

import (
	"fmt"
	"strconv"

	"github.com/offheap/offheap/arena"
)

// MaxMapPages bounds the pages a decoded page map may claim: the pages of
// a heap grown to arena.DefaultReserve (64 GiB, 8 Mi pages), so any heap
// with the default reservation can be read, while a document claiming more
// is refused before anything is allocated. Decoding costs a byte per page
// (8 MiB at most); arenastat's PNG of that many pages is 16,384 chunk rows,
// 1,024 x 229,374 pixels at a byte each (about 230 MB), where 1 TiB of
// claimed heap once cost 3.8 GB and 75 s from a 75-byte reply.
const MaxMapPages = arena.DefaultReserve / arena.PageSize

// The geometry a page map may declare: powers of two within these bounds.
// offheap uses 8 KiB pages in 512-page chunks; the bounds leave room for
// other page sizes (a 4 KiB kernel page up to a 64 KiB one) without taking
// nonsense that would make a reader's arithmetic overflow.
const (
	minMapPageSize   = 4 << 10
	maxMapPageSize   = 64 << 10
	maxMapChunkPages = 1 << 12
)

// maxRunDigits bounds the digits of one run count: MaxMapPages has 7, so
// a longer count is refused without being parsed.
const maxRunDigits = 10

// The letters of the page states in PageMap.Runs.
const (
	letterInUse    = 'u'
	letterFree     = 'f'
	letterReleased = 'r'
)

// PageMap is the wire form of a heap's page map: the state of every grown
// page, lowest address first, run-length encoded. Runs is a sequence of
// "<count><letter>" with letter u (in use), f (free, committed) or r
// (free, released), e.g. "512u30f482r"; counts are positive, adjacent
// runs differ in state, and the counts add up to Pages.
type PageMap struct {
	PageSize   int    `json:"page_size"`
	ChunkPages int    `json:"chunk_pages"`
	Pages      int    `json:"pages"`
	Runs       string `json:"runs"`
}

// EncodePageMap encodes states.
func EncodePageMap(states []arena.PageState) PageMap {
	m := PageMap{PageSize: arena.PageSize, ChunkPages: arena.ChunkPages, Pages: len(states)}
	var b []byte
	for i := 0; i < len(states); {
		j := i + 1
		for j < len(states) && states[j] == states[i] {
			j++
		}
		b = strconv.AppendInt(b, int64(j-i), 10)
		b = append(b, stateLetter(states[i]))
		i = j
	}
	m.Runs = string(b)
	return m
}

func stateLetter(s arena.PageState) byte {
	switch s {
	case arena.PageInUse:
		return letterInUse
	case arena.PageFree:
		return letterFree
	}
	return letterReleased
}

// Decode checks m and returns its page states.
func (m PageMap) Decode() ([]arena.PageState, error) {
	// Everything declared is checked before anything is allocated, and
	// each run against the pages still declared before it is expanded: the
	// work done is bounded by MaxMapPages, not by what a sender claims.
	if m.Pages < 0 || m.Pages > MaxMapPages {
		return nil, fmt.Errorf("page map: %d pages out of range [0, %d] (the limit MaxMapPages: a heap grown to arena.DefaultReserve)",
			m.Pages, MaxMapPages)
	}
	if !powerOfTwoIn(m.PageSize, minMapPageSize, maxMapPageSize) || !powerOfTwoIn(m.ChunkPages, 1, maxMapChunkPages) {
		return nil, fmt.Errorf("page map: bad geometry: page size %d (want a power of two in [%d, %d]), chunk pages %d (want a power of two in [1, %d])",
			m.PageSize, minMapPageSize, maxMapPageSize, m.ChunkPages, maxMapChunkPages)
	}
	out := make([]arena.PageState, 0, m.Pages)
	r := m.Runs
	for len(r) > 0 {
		i := 0
		for i < len(r) && r[i] >= '0' && r[i] <= '9' {
			i++
		}
		if i == 0 || i == len(r) {
			return nil, fmt.Errorf("page map: bad run at %q: want <count><u|f|r>", clip(r))
		}
		n, err := 0, error(nil)
		if i <= maxRunDigits {
			n, err = strconv.Atoi(r[:i])
		}
		if i > maxRunDigits || err != nil || n <= 0 || n > m.Pages-len(out) {
			return nil, fmt.Errorf("page map: bad run count %q (%d pages left)", clip(r[:i]), m.Pages-len(out))
		}
		var s arena.PageState
		switch r[i] {
		case letterInUse:
			s = arena.PageInUse
		case letterFree:
			s = arena.PageFree
		case letterReleased:
			s = arena.PageReleased
		default:
			return nil, fmt.Errorf("page map: unknown page state %q", r[i])
		}
		lo := len(out)
		out = out[:lo+n] // within the capacity made above: n <= m.Pages-len(out)
		for j := lo; j < len(out); j++ {
			out[j] = s
		}
		r = r[i+1:]
	}
	if len(out) != m.Pages {
		return nil, fmt.Errorf("page map: runs cover %d pages, want %d", len(out), m.Pages)
	}
	return out, nil
}

// powerOfTwoIn reports whether n is a power of two in [lo, hi].
func powerOfTwoIn(n, lo, hi int) bool { return n >= lo && n <= hi && n&(n-1) == 0 }

func clip(s string) string {
	if len(s) > maxClip {
		return s[:maxClip] + "..."
	}
	return s
}

// maxClip is how much of a bad page map an error quotes.
const maxClip = 16
