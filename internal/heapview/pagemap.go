package heapview

import (
	"fmt"
	"strconv"

	"github.com/offheap/offheap/arena"
)

// ChunkPages is how many pages the heap grows by at a time (4 MiB of 8 KiB
// pages); the page map is drawn one chunk a row. arena does not export it.
const ChunkPages = 512

// MaxMapPages bounds the pages a decoded page map may claim (1 TiB of
// heap), so a bad or hostile document cannot make a reader allocate
// without end.
const MaxMapPages = 1 << 27

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
	m := PageMap{PageSize: arena.PageSize, ChunkPages: ChunkPages, Pages: len(states)}
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
	if m.Pages < 0 || m.Pages > MaxMapPages {
		return nil, fmt.Errorf("page map: %d pages out of range [0, %d]", m.Pages, MaxMapPages)
	}
	if m.ChunkPages <= 0 || m.PageSize <= 0 {
		return nil, fmt.Errorf("page map: bad geometry: page size %d, chunk pages %d", m.PageSize, m.ChunkPages)
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
		n, err := strconv.Atoi(r[:i])
		if err != nil || n <= 0 || n > m.Pages-len(out) {
			return nil, fmt.Errorf("page map: bad run count %q (%d pages left)", r[:i], m.Pages-len(out))
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
		for range n {
			out = append(out, s)
		}
		r = r[i+1:]
	}
	if len(out) != m.Pages {
		return nil, fmt.Errorf("page map: runs cover %d pages, want %d", len(out), m.Pages)
	}
	return out, nil
}

func clip(s string) string {
	if len(s) > maxClip {
		return s[:maxClip] + "..."
	}
	return s
}

// maxClip is how much of a bad page map an error quotes.
const maxClip = 16
