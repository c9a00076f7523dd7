package pages

import (
	"errors"
	"testing"
)

func TestAllocCache(t *testing.T) {
	a := newTest(t, 2)
	mustGrow(t, a, 0, 2)
	// Pages 0-69 in use, 70-79 free unscavenged, 80.. free scavenged.
	if _, err := a.allocRange(pg(0), 80); err != nil {
		t.Fatal(err)
	}
	if err := a.Free(pg(70), 10); err != nil {
		t.Fatal(err)
	}
	before := a.Stats()
	var c Cache
	if err := a.AllocCache(&c); err != nil {
		t.Fatal(err)
	}
	// The block holding the lowest free page: [64, 128).
	wantFree := ^uint64(1<<6 - 1)
	wantScav := ^uint64(1<<16 - 1)
	if c.base != pg(64) || c.freeBits != wantFree || c.scavBits != wantScav {
		t.Fatalf("cache %+v, want base %#x free %#x scav %#x", c, pg(64), wantFree, wantScav)
	}
	// The cache's own view: 58 free pages (70..127), 48 of them (80..127)
	// scavenged, yielded lowest first.
	if n, sc := c.Counts(); n != 58 || sc != 48 {
		t.Fatalf("Counts = %d, %d; want 58, 48", n, sc)
	}
	want := uint(70)
	for addr, scav := range c.FreePages {
		if addr != pg(want) || scav != (want >= 80) {
			t.Fatalf("FreePages yielded %#x scav %v; want %#x scav %v", addr, scav, pg(want), want >= 80)
		}
		want++
	}
	if want != 128 {
		t.Fatalf("FreePages stopped before page %d", want)
	}
	if got := a.Stats(); got.Free != before.Free-58 || got.Scavenged != before.Scavenged-48 {
		t.Fatalf("stats %+v after taking 58 pages, 48 scavenged, from %+v", got, before)
	}
	for p := uint(64); p < 128; p++ {
		if a.State(pg(p)) != InUse {
			t.Fatalf("page %d not in use after AllocCache", p)
		}
	}
	mustInvariants(t, a)

	// Cache allocations: lowest fit first, scavenged counts.
	for i, tt := range []struct {
		n        uintptr
		p        uint
		scav     uintptr
		fits     bool
		wantFree uint64
	}{
		{1, 70, 0, true, 0},
		{4, 71, 0, true, 0},
		{8, 75, 3, true, 0},
		{15, 83, 15, true, 0},
		{16, 0, 0, false, 0}, // CacheMaxRun is too big for the cache
		{0, 0, 0, false, 0},
		{15, 98, 15, true, 0},
		{15, 113, 15, true, 0},
		{1, 0, 0, false, 0},
	} {
		base, scav := c.Alloc(tt.n)
		if !tt.fits {
			if base != 0 {
				t.Fatalf("alloc %d: Alloc(%d) = %#x, want none", i, tt.n, base)
			}
			continue
		}
		if base != pg(tt.p) || scav != tt.scav {
			t.Fatalf("alloc %d: Alloc(%d) = page %d scav %d; want %d, %d", i, tt.n, (base-testBase)/PageSize, scav, tt.p, tt.scav)
		}
	}
	if !c.Empty() {
		t.Fatalf("cache not empty: %#x", c.freeBits)
	}
	if err := a.FlushCache(&c); err != nil { // empty: nothing to give back
		t.Fatal(err)
	}
	if c != (Cache{}) {
		t.Fatalf("flushed cache %+v", c)
	}
	mustInvariants(t, a)
}

func TestFlushCache(t *testing.T) {
	a := newTest(t, 1)
	mustGrow(t, a, 0, 1)
	if _, err := a.allocRange(pg(0), 3); err != nil {
		t.Fatal(err)
	}
	if err := a.Free(pg(1), 1); err != nil {
		t.Fatal(err)
	}
	before := snap(a)
	var c Cache
	if err := a.AllocCache(&c); err != nil {
		t.Fatal(err)
	}
	b1, s1 := c.Alloc(1) // page 1, unscavenged
	b2, s2 := c.Alloc(2) // pages 3-4, scavenged
	if b1 != pg(1) || s1 != 0 || b2 != pg(3) || s2 != 2 {
		t.Fatalf("cache allocs %#x/%d %#x/%d", b1, s1, b2, s2)
	}
	if err := a.FlushCache(&c); err != nil {
		t.Fatal(err)
	}
	if c != (Cache{}) {
		t.Fatalf("cache not emptied: %+v", c)
	}
	mustInvariants(t, a)
	// Pages the cache handed out stay in use; the rest are back, with
	// their scavenged bits.
	if err := a.Free(b1, 1); err != nil {
		t.Fatal(err)
	}
	if err := a.FreeScavenged(b2, 2); err != nil {
		t.Fatal(err)
	}
	after := snap(a)
	after.Hint = before.Hint
	if !equalSnap(before, after) {
		t.Fatalf("state not restored:\nbefore %+v\nafter  %+v", before.Stats, after.Stats)
	}
	mustInvariants(t, a)
}

func equalSnap(x, y snapshot) bool {
	if x.Stats != y.Stats || len(x.States) != len(y.States) {
		return false
	}
	for i := range x.States {
		if x.States[i] != y.States[i] {
			return false
		}
	}
	return true
}

// TestCacheAcrossChunks takes caches until the heap is exhausted: every
// block comes from the lowest free page, blocks never overlap.
func TestCacheAcrossChunks(t *testing.T) {
	a := newTest(t, 3)
	mustGrow(t, a, 0, 1)
	mustGrow(t, a, 2, 1)
	seen := map[uintptr]bool{}
	var caches []Cache
	for {
		var c Cache
		err := a.AllocCache(&c)
		if errors.Is(err, ErrNoSpace) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if seen[c.base] {
			t.Fatalf("block %#x handed out twice", c.base)
		}
		seen[c.base] = true
		caches = append(caches, c)
	}
	if len(caches) != 2*ChunkPages/CachePages {
		t.Fatalf("%d blocks", len(caches))
	}
	if a.Stats().Free != 0 {
		t.Fatalf("stats %+v", a.Stats())
	}
	for i := range caches {
		if err := a.FlushCache(&caches[i]); err != nil {
			t.Fatal(err)
		}
	}
	if got := a.Stats(); got.Free != 2*ChunkPages || got.Scavenged != 2*ChunkPages {
		t.Fatalf("stats after flushing %+v", got)
	}
	mustInvariants(t, a)
}
