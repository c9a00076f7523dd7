package pages

import (
	"errors"
	"testing"
)

// grow is how a heap grows the allocator: CommitGrow (no heap lock), then
// Grow (under it).
func grow(a *Allocator, base, npages uintptr) error {
	if err := a.CommitGrow(base, npages); err != nil {
		return err
	}
	return a.Grow(base, npages)
}

func mustGrow(t testing.TB, a *Allocator, chunk, nchunks uint) {
	t.Helper()
	if err := grow(a, pg(chunk*ChunkPages), uintptr(nchunks)*ChunkPages); err != nil {
		t.Fatal(err)
	}
}

func mustAlloc(t testing.TB, a *Allocator, n uintptr) (uint, uintptr) {
	t.Helper()
	base, scav, err := a.Alloc(n)
	if err != nil {
		t.Fatalf("Alloc(%d): %v", n, err)
	}
	return uint((base - testBase) / PageSize), scav
}

// step is one operation of a table-driven scenario: "alloc" returns the
// first-fit page index, "range" allocates at p, "free"/"frees" free at p.
type step struct {
	op   string
	p, n uint
	want uint // alloc: expected page index; scav: expected scavenged count
	scav uint
}

func runSteps(t *testing.T, a *Allocator, steps []step) {
	t.Helper()
	for i, s := range steps {
		switch s.op {
		case "alloc":
			p, scav := mustAlloc(t, a, uintptr(s.n))
			if p != s.want || scav != uintptr(s.scav) {
				t.Fatalf("step %d: Alloc(%d) = page %d, scav %d; want %d, %d", i, s.n, p, scav, s.want, s.scav)
			}
		case "range":
			scav, err := a.allocRange(pg(s.p), uintptr(s.n))
			if err != nil || scav != uintptr(s.scav) {
				t.Fatalf("step %d: allocRange(%d, %d) = %d, %v; want scav %d", i, s.p, s.n, scav, err, s.scav)
			}
		case "free":
			if err := a.Free(pg(s.p), uintptr(s.n)); err != nil {
				t.Fatalf("step %d: Free(%d, %d): %v", i, s.p, s.n, err)
			}
		case "frees":
			if err := a.FreeScavenged(pg(s.p), uintptr(s.n)); err != nil {
				t.Fatalf("step %d: FreeScavenged(%d, %d): %v", i, s.p, s.n, err)
			}
		case "nospace":
			if _, _, err := a.Alloc(uintptr(s.n)); !errors.Is(err, ErrNoSpace) {
				t.Fatalf("step %d: Alloc(%d) = %v, want ErrNoSpace", i, s.n, err)
			}
		default:
			t.Fatalf("bad op %q", s.op)
		}
		mustInvariants(t, a)
	}
}

func TestAllocScenarios(t *testing.T) {
	const C = ChunkPages
	tests := []struct {
		name    string
		nchunks uint
		grow    [][2]uint // chunk, count
		steps   []step
	}{
		{"first fit in one chunk", 1, [][2]uint{{0, 1}}, []step{
			{op: "alloc", n: 1, want: 0, scav: 1},
			{op: "alloc", n: 3, want: 1, scav: 3},
			{op: "free", p: 1, n: 3},
			{op: "alloc", n: 2, want: 1},
			{op: "alloc", n: 4, want: 3, scav: 3},
			{op: "alloc", n: 1, want: 7, scav: 1},
		}},
		{"exhaust a chunk", 1, [][2]uint{{0, 1}}, []step{
			{op: "alloc", n: C - 1, want: 0, scav: C - 1},
			{op: "alloc", n: 1, want: C - 1, scav: 1},
			{op: "nospace", n: 1},
			{op: "free", p: 7, n: 1},
			{op: "alloc", n: 1, want: 7},
			{op: "nospace", n: 1},
		}},
		{"alloc across a chunk border", 2, [][2]uint{{0, 2}}, []step{
			{op: "range", p: 0, n: C - 10, scav: C - 10},
			{op: "alloc", n: 20, want: C - 10, scav: 20},
			{op: "free", p: C - 10, n: 20},
			{op: "alloc", n: 5, want: C - 10},
			{op: "alloc", n: 15, want: C - 5, scav: 0},
			{op: "alloc", n: 1, want: C + 10, scav: 1},
		}},
		{"free across a chunk border joins runs", 3, [][2]uint{{0, 3}}, []step{
			{op: "range", p: 0, n: 3 * C, scav: 3 * C},
			{op: "free", p: C - 3, n: 6},
			{op: "free", p: 2*C - 1, n: 2},
			{op: "alloc", n: 7, want: 0 + 0*C + (2*C - 1)}, // no 7-run: the runs are 6 and 2
		}},
		{"multi-chunk run of 2000 pages", 16, [][2]uint{{0, 16}}, []step{
			{op: "range", p: 100, n: 1, scav: 1},
			{op: "alloc", n: 2000, want: 101, scav: 2000},
			{op: "alloc", n: 2000, want: 2101, scav: 2000},
			{op: "alloc", n: 1, want: 0, scav: 1},
			{op: "free", p: 101, n: 2000},
			{op: "alloc", n: 2001, want: 4101, scav: 2001},
			{op: "alloc", n: 2000, want: 101, scav: 0},
		}},
		{"run spanning whole chunks", 16, [][2]uint{{0, 16}}, []step{
			{op: "alloc", n: 10 * C, want: 0, scav: 10 * C},
			{op: "alloc", n: 6 * C, want: 10 * C, scav: 6 * C},
			{op: "nospace", n: 1},
			{op: "frees", p: 3 * C, n: 5 * C},
			{op: "alloc", n: 5*C + 1, want: 0}, // placeholder, replaced below
		}},
		{"discontiguous grown ranges", 16, [][2]uint{{1, 1}, {5, 2}, {12, 1}}, []step{
			{op: "alloc", n: C + 1, want: 5 * C, scav: C + 1},
			{op: "alloc", n: C, want: C, scav: C},
			{op: "alloc", n: C - 1, want: 5*C + C + 1, scav: C - 1},
			{op: "alloc", n: 2, want: 12 * C, scav: 2},
			{op: "nospace", n: C},
		}},
		{"scavenged accounting", 2, [][2]uint{{0, 2}}, []step{
			{op: "alloc", n: 10, want: 0, scav: 10},
			{op: "free", p: 0, n: 5},
			{op: "frees", p: 5, n: 5},
			{op: "alloc", n: 8, want: 0, scav: 3},
			{op: "alloc", n: 4, want: 8, scav: 4},
		}},
	}
	tests[5].steps[4] = step{op: "nospace", n: 5*C + 1}
	tests[3].steps[3] = step{op: "nospace", n: 7}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTest(t, tt.nchunks)
			for _, g := range tt.grow {
				mustGrow(t, a, g[0], g[1])
			}
			runSteps(t, a, tt.steps)
		})
	}
}

func TestStateAndStats(t *testing.T) {
	a := newTest(t, 4)
	if got := a.State(pg(0)); got != NotGrown {
		t.Fatalf("state before grow = %v", got)
	}
	mustGrow(t, a, 1, 2)
	if got, want := a.Stats(), (Stats{Grown: 1024, Free: 1024, Scavenged: 1024, LongestFree: 1024}); got != want {
		t.Fatalf("stats after grow = %+v, want %+v", got, want)
	}
	p, _ := mustAlloc(t, a, 10)
	if err := a.Free(pg(p+2), 3); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		p    uint
		want State
	}{{0, NotGrown}, {ChunkPages - 1, NotGrown}, {p, InUse}, {p + 2, Free}, {p + 5, InUse}, {p + 10, FreeScavenged}, {3 * ChunkPages, NotGrown}} {
		if got := a.State(pg(tt.p)); got != tt.want {
			t.Errorf("State(page %d) = %v, want %v", tt.p, got, tt.want)
		}
	}
	if got := a.State(pg(5 * ChunkPages)); got != NotGrown {
		t.Errorf("State beyond the reservation = %v", got)
	}
	if got := a.State(pg(p+2) + PageSize - 1); got != Free {
		t.Errorf("State of the last byte of a free page = %v", got)
	}
	if got := a.State(testBase - 1); got != NotGrown {
		t.Errorf("State below the reservation = %v", got)
	}
	want := Stats{Grown: 1024, Free: 1024 - 7, Scavenged: 1024 - 10, LongestFree: 1024 - 10}
	if got := a.Stats(); got != want {
		t.Fatalf("stats = %+v, want %+v", got, want)
	}
}

// TestWideTopLevel caps the tree so the top level is wider than one node
// and must be searched through its live bitmap, with runs crossing top
// entries.
func TestWideTopLevel(t *testing.T) {
	a := newTestCap(t, 200, 1) // 200 leaf summaries, all at the top
	if a.layout.top != 0 || len(a.live) != 4 {
		t.Fatalf("top %d, live words %d", a.layout.top, len(a.live))
	}
	mustGrow(t, a, 0, 200)
	if _, err := a.allocRange(pg(0), 150*ChunkPages+7); err != nil {
		t.Fatal(err)
	}
	runSteps(t, a, []step{
		{op: "alloc", n: 3 * ChunkPages, want: 150*ChunkPages + 7, scav: 3 * ChunkPages},
		{op: "alloc", n: 1, want: 153*ChunkPages + 7, scav: 1},
		{op: "free", p: 10 * ChunkPages, n: 2},
		{op: "alloc", n: 3, want: 153*ChunkPages + 8, scav: 3},
		{op: "alloc", n: 2, want: 10 * ChunkPages},
	})
	a.hint = 0
	p, _ := mustAlloc(t, a, 46*ChunkPages)
	if p != 153*ChunkPages+11 {
		t.Fatalf("big run at page %d", p)
	}
	mustInvariants(t, a)
}

// TestLevels checks the tree shape chosen for reservations of many sizes.
func TestLevels(t *testing.T) {
	tests := []struct {
		size    uintptr
		top     int
		topLen  uint
		leafLen uint
	}{
		{ChunkBytes, 0, 1, 1},
		{8 * ChunkBytes, 0, 8, 8},
		{9 * ChunkBytes, 1, 2, 16},
		{1 << 30, 2, 4, 256},
		{16 << 30, 3, 8, 4096},
		{128 << 30, 4, 8, 32768},
		{1 << 40, 4, 64, 262144},
		{1<<40 + ChunkBytes, 4, 65, 266240},
	}
	for _, tt := range tests {
		a, err := New(testBase, tt.size, nil)
		if err != nil {
			t.Fatal(err)
		}
		l := a.layout
		if l.top != tt.top || l.levelLen[l.top] != tt.topLen || l.levelLen[0] != tt.leafLen {
			t.Errorf("size %#x: top %d with %d entries, %d leaves; want %d, %d, %d", tt.size, l.top, l.levelLen[l.top], l.levelLen[0], tt.top, tt.topLen, tt.leafLen)
		}
		_ = a.Close()
	}
}

// TestHugeReservation grows only the bottom and top chunks of a 1 TiB
// reservation and checks searches that must cross the whole tree.
func TestHugeReservation(t *testing.T) {
	const nchunks = 1 << 40 / ChunkBytes
	a := newTest(t, nchunks)
	mustGrow(t, a, 0, 2)
	mustGrow(t, a, nchunks-3, 3)
	p, _ := mustAlloc(t, a, 2*ChunkPages)
	if p != 0 {
		t.Fatalf("bottom run at %d", p)
	}
	p, scav := mustAlloc(t, a, 2*ChunkPages+1)
	if p != (nchunks-3)*ChunkPages || scav != 2*ChunkPages+1 {
		t.Fatalf("top run at %d scav %d", p, scav)
	}
	if _, _, err := a.Alloc(ChunkPages); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Alloc of a chunk: %v", err)
	}
	if err := a.Free(pg(0), 1); err != nil {
		t.Fatal(err)
	}
	p, _ = mustAlloc(t, a, 1)
	if p != 0 {
		t.Fatalf("freed bottom page not reused: %d", p)
	}
	if got := a.Stats(); got.Grown != 5*ChunkPages || got.Free != ChunkPages-1 || got.LongestFree != ChunkPages-1 {
		t.Fatalf("stats %+v", got)
	}
}

// TestGrowFull grows a heap bigger than a summary can count (over 16 GiB
// free in one run) and takes it in one allocation.
func TestGrowFull(t *testing.T) {
	const nchunks = 64 << 30 / ChunkBytes
	a := newTest(t, nchunks)
	mustGrow(t, a, 0, nchunks)
	if got := a.Stats().LongestFree; got != nchunks*ChunkPages {
		t.Fatalf("LongestFree = %d", got)
	}
	p, scav := mustAlloc(t, a, nchunks*ChunkPages-1)
	if p != 0 || scav != nchunks*ChunkPages-1 {
		t.Fatalf("Alloc of everything but one page: %d, %d", p, scav)
	}
	p, _ = mustAlloc(t, a, 1)
	if p != nchunks*ChunkPages-1 {
		t.Fatalf("last page at %d", p)
	}
	if err := a.Free(pg(0), nchunks*ChunkPages); err != nil {
		t.Fatal(err)
	}
	if got := a.Stats(); got.Free != nchunks*ChunkPages || got.Scavenged != 0 || got.LongestFree != nchunks*ChunkPages {
		t.Fatalf("stats %+v", got)
	}
}
