package pages

import (
	"math/bits"
	"testing"
)

// used builds a chunk bitmap with the given [start, end) runs in use.
func used(runs ...[2]uint) *pageBits {
	var b pageBits
	for _, r := range runs {
		b.setRange(r[0], r[1]-r[0])
	}
	return &b
}

// naiveFindClear is the obvious page-by-page search.
func naiveFindClear(b *pageBits, n, from uint) (uint, bool) {
	run := uint(0)
	for i := from; i < ChunkPages; i++ {
		if b[i/64]&(1<<(i%64)) != 0 {
			run = 0
			continue
		}
		run++
		if run == n {
			return i + 1 - n, true
		}
	}
	return 0, false
}

func TestFindClear(t *testing.T) {
	tests := []struct {
		name    string
		b       *pageBits
		n, from uint
		want    uint
		ok      bool
	}{
		{"empty chunk, 1 page", used(), 1, 0, 0, true},
		{"empty chunk, whole chunk", used(), ChunkPages, 0, 0, true},
		{"full chunk", used([2]uint{0, ChunkPages}), 1, 0, 0, false},
		{"first free after used prefix", used([2]uint{0, 70}), 1, 0, 70, true},
		{"from skips free pages", used(), 3, 100, 100, true},
		{"from in the middle of a run", used([2]uint{0, 10}, [2]uint{20, ChunkPages}), 4, 12, 12, true},
		{"from leaves too little", used([2]uint{0, 10}, [2]uint{20, ChunkPages}), 9, 12, 0, false},
		{"run inside a word", used([2]uint{0, 3}, [2]uint{7, ChunkPages}), 4, 0, 3, true},
		{"run inside a word, too short", used([2]uint{0, 3}, [2]uint{6, ChunkPages}), 4, 0, 0, false},
		{"run across a word border", used([2]uint{0, 60}, [2]uint{68, ChunkPages}), 8, 0, 60, true},
		{"run across several words", used([2]uint{0, 60}, [2]uint{260, ChunkPages}), 200, 0, 60, true},
		{"first fit, not best fit", used([2]uint{5, 10}, [2]uint{13, 100}), 3, 0, 0, true},
		{"skips a short run for a longer one", used([2]uint{0, 1}, [2]uint{3, 100}), 5, 0, 100, true},
		{"run at the very top", used([2]uint{0, ChunkPages - 5}), 5, 0, ChunkPages - 5, true},
		{"exactly 64 aligned", used([2]uint{0, 64}, [2]uint{128, ChunkPages}), 64, 0, 64, true},
		{"65 needs two words", used([2]uint{0, 64}, [2]uint{128, 191}, [2]uint{257, ChunkPages}), 65, 0, 191, true},
		{"last page only", used([2]uint{0, ChunkPages - 1}), 1, 0, ChunkPages - 1, true},
		{"from at the last page", used(), 1, ChunkPages - 1, ChunkPages - 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.b.findClear(tt.n, tt.from)
			if got != tt.want || ok != tt.ok {
				t.Errorf("findClear(%d, %d) = %d, %v; want %d, %v", tt.n, tt.from, got, ok, tt.want, tt.ok)
			}
			nw, nok := naiveFindClear(tt.b, tt.n, tt.from)
			if got != nw || ok != nok {
				t.Errorf("naive search says %d, %v", nw, nok)
			}
		})
	}
}

// TestFindClearPatterns checks the search against the naive one on
// pseudo-random bitmaps.
func TestFindClearPatterns(t *testing.T) {
	x := uint64(0x9e3779b97f4a7c15)
	for iter := range 2000 {
		var b pageBits
		density := iter % 7
		for w := range b {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			b[w] = x
			for range density {
				b[w] &= x >> (w + 1) // sparser used bits
			}
		}
		for _, n := range []uint{1, 2, 3, 5, 8, 17, 63, 64, 65, 100, 300, 512} {
			from := uint(iter*7) % ChunkPages
			got, ok := b.findClear(n, from)
			want, wok := naiveFindClear(&b, n, from)
			if got != want || ok != wok {
				t.Fatalf("bitmap %x: findClear(%d, %d) = %d, %v; want %d, %v", b, n, from, got, ok, want, wok)
			}
		}
		if s, want := b.summarize(), naiveSummary(&b); s != want {
			t.Fatalf("bitmap %x: summarize = %v, want %v", b, s, want)
		}
	}
}

func naiveSummary(b *pageBits) summary {
	var start, best, run uint
	startDone := false
	for i := uint(0); i < ChunkPages; i++ {
		if b[i/64]&(1<<(i%64)) != 0 {
			if !startDone {
				start, startDone = run, true
			}
			run = 0
			continue
		}
		run++
		best = max(best, run)
	}
	if !startDone {
		start = ChunkPages
	}
	return packSummary(start, best, run)
}

func TestRunStarts(t *testing.T) {
	tests := []struct {
		x    uint64
		n    uint
		want uint64
	}{
		{0, 1, 0},
		{^uint64(0), 1, ^uint64(0)},
		{^uint64(0), 64, 1},
		{^uint64(0), 63, 3},
		{0b1110111, 3, 0b10001},
		{0b1110111, 4, 0},
		{0xff00, 8, 0x100},
		{0xff00, 5, 0xf00},
	}
	for _, tt := range tests {
		if got := runStarts(tt.x, tt.n); got != tt.want {
			t.Errorf("runStarts(%#b, %d) = %#b, want %#b", tt.x, tt.n, got, tt.want)
		}
	}
}

func TestLongestRun(t *testing.T) {
	tests := []struct {
		x    uint64
		want uint
	}{
		{0, 0}, {1, 1}, {^uint64(0), 64}, {^uint64(0) >> 1, 63}, {1 << 63, 1},
		{0b1101110, 3}, {0xf0f0ff00, 8}, {0x8000_0000_0000_0001, 1},
	}
	for _, tt := range tests {
		if got := longestRun(tt.x); got != tt.want {
			t.Errorf("longestRun(%#x) = %d, want %d", tt.x, got, tt.want)
		}
	}
}

func TestRangeOps(t *testing.T) {
	tests := []struct{ i, n uint }{{0, 1}, {0, 64}, {5, 59}, {60, 10}, {63, 1}, {64, 64}, {1, 510}, {0, ChunkPages}, {511, 1}}
	for _, tt := range tests {
		var b pageBits
		b.setRange(tt.i, tt.n)
		if c := b.countRange(0, ChunkPages); c != tt.n {
			t.Errorf("setRange(%d, %d): %d bits set", tt.i, tt.n, c)
		}
		if !b.allSet(tt.i, tt.n) || (tt.i > 0 && b.allSet(tt.i-1, tt.n)) {
			t.Errorf("allSet wrong around [%d, +%d)", tt.i, tt.n)
		}
		if tt.i > 0 && !b.allClear(0, tt.i) || b.allClear(tt.i, 1) {
			t.Errorf("allClear wrong around [%d, +%d)", tt.i, tt.n)
		}
		if got := b.clearBelow(tt.i); got != 0 {
			t.Errorf("clearBelow(%d) = %d, want 0", tt.i, got)
		}
		if end := tt.i + tt.n; end < ChunkPages {
			if got := b.clearAbove(end); got != ChunkPages {
				t.Errorf("clearAbove(%d) = %d", end, got)
			}
			if got := b.clearBelow(ChunkPages); got != end {
				t.Errorf("clearBelow(top) = %d, want %d", got, end)
			}
		}
		if got := b.clearAbove(0); tt.i > 0 && got != tt.i {
			t.Errorf("clearAbove(0) = %d, want %d", got, tt.i)
		}
		b.clearRange(tt.i, tt.n)
		if b != (pageBits{}) {
			t.Errorf("clearRange(%d, %d) left %x", tt.i, tt.n, b)
		}
	}
	if n := bits.OnesCount64(wordMask(3, 61)); n != 61 {
		t.Errorf("wordMask(3, 61) has %d bits", n)
	}
}

func TestSummarize(t *testing.T) {
	tests := []struct {
		name            string
		b               *pageBits
		start, max, end uint
	}{
		{"free", used(), ChunkPages, ChunkPages, ChunkPages},
		{"full", used([2]uint{0, ChunkPages}), 0, 0, 0},
		{"first page used", used([2]uint{0, 1}), 0, ChunkPages - 1, ChunkPages - 1},
		{"last page used", used([2]uint{ChunkPages - 1, ChunkPages}), ChunkPages - 1, ChunkPages - 1, 0},
		{"middle used", used([2]uint{100, 300}), 100, ChunkPages - 300, ChunkPages - 300},
		{"longest inside a word", used([2]uint{0, 2}, [2]uint{9, 10}, [2]uint{11, ChunkPages}), 0, 7, 0},
		{"longest across words", used([2]uint{0, 50}, [2]uint{200, ChunkPages - 3}), 0, 150, 3},
		{"alternating", alternating(), 0, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, m, e := tt.b.summarize().unpack()
			if s != tt.start || m != tt.max || e != tt.end {
				t.Errorf("summarize = (%d,%d,%d), want (%d,%d,%d)", s, m, e, tt.start, tt.max, tt.end)
			}
		})
	}
}

func alternating() *pageBits {
	var b pageBits
	for w := range b {
		b[w] = 0x5555555555555555
	}
	return &b
}
