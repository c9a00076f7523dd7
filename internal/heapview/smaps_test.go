package heapview

import (
	"errors"
	"strings"
	"testing"
	"unsafe"

	"github.com/offheap/offheap/arena"
)

const smapsSample = `00400000-00452000 r-xp 00000000 08:02 173521      /usr/bin/x
Size:                328 kB
Rss:                 300 kB
7f0000000000-7f0000400000 rw-p 00000000 00:00 0      [anon:offheap]
Size:               4096 kB
Rss:                2048 kB
Pss:                2048 kB
7f0000400000-7f0001000000 ---p 00000000 00:00 0      [anon:offheap]
Size:              12288 kB
Rss:                   0 kB
7f0001000000-7f0001400000 rw-p 00000000 00:00 0
Size:               4096 kB
Rss:                1000 kB
7fff00000000-7fff00002000 rw-p 00000000 00:00 0      [stack]
Rss:                   8 kB
`

func TestResidentIn(t *testing.T) {
	ms := []arena.Mapping{{Name: "heap", Base: 0x7f0000000000, Size: 16 << 20}}
	noExact := func(lo, hi uint64) (uint64, error) { return 0, errors.New("no pagemap") }
	got, err := residentIn(strings.NewReader(smapsSample), ms, noExact)
	if err != nil {
		t.Fatal(err)
	}
	if got != 2048<<10 {
		t.Fatalf("resident %d, want %d (the two VMAs of the reservation)", got, 2048<<10)
	}
	// A VMA half inside the ranges: its overlap counted exactly, or, when
	// that fails, half its Rss.
	ms = []arena.Mapping{{Base: 0x7f0001000000, Size: 2 << 20}}
	if got, _ := residentIn(strings.NewReader(smapsSample), ms, noExact); got != 500<<10 {
		t.Fatalf("partial overlap: %d, want %d", got, 500<<10)
	}
	exact := func(lo, hi uint64) (uint64, error) {
		if lo != 0x7f0001000000 || hi != lo+2<<20 {
			t.Errorf("exact asked for [%#x, %#x)", lo, hi)
		}
		return 123 << 12, nil
	}
	if got, _ := residentIn(strings.NewReader(smapsSample), ms, exact); got != 123<<12 {
		t.Fatalf("partial overlap, exact: %d, want %d", got, 123<<12)
	}
	if _, err := residentIn(strings.NewReader("7f0000000000-7f0000400000 rw-p 0 0 0\nRss: x kB\n"),
		[]arena.Mapping{{Base: 0x7f0000000000, Size: 4 << 20}}, noExact); err == nil {
		t.Fatal("bad Rss line accepted")
	}
}

func TestResidentBytesLive(t *testing.T) {
	h, err := arena.NewHeap(arena.Config{Reserve: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	const n, size = 64, 128 << 10 // 8 MiB of large objects
	var ps []unsafe.Pointer
	for range n {
		p, err := h.Alloc(size)
		if err != nil {
			t.Fatal(err)
		}
		b := unsafe.Slice((*byte)(p), size)
		for i := 0; i < size; i += 4096 {
			b[i] = 1
		}
		ps = append(ps, p)
	}
	full, err := ResidentBytes(h.Mappings())
	if err != nil {
		t.Skipf("no smaps here: %v", err)
	}
	if full < n*size {
		t.Fatalf("resident %d after touching %d bytes", full, n*size)
	}
	for _, p := range ps {
		if err := h.Free(p); err != nil {
			t.Fatal(err)
		}
	}
	h.Scavenge()
	after, _ := ResidentBytes(h.Mappings())
	if after > full/2 {
		t.Fatalf("resident %d after freeing and scavenging, was %d", after, full)
	}
	s := Take(h)
	if !s.RSSKnown || s.Time.IsZero() || s.Reserved != 64<<20 {
		t.Fatalf("Take: %+v", s)
	}
}

func TestSpanBytes(t *testing.T) {
	h, err := arena.NewHeap(arena.Config{Reserve: 64 << 20, ScavengeDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	m := SpanBytes(h.Stats())
	if len(m) < 60 {
		t.Fatalf("span sizes for only %d classes", len(m))
	}
	for size, span := range m {
		if span%arena.PageSize != 0 || span < size {
			t.Errorf("class %d: span %d", size, span)
		}
	}
}
