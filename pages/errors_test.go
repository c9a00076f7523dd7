package pages

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// snapshot is everything observable about a small allocator.
type snapshot struct {
	States []State
	Stats  Stats
	Hint   uint
}

func snap(a *Allocator) snapshot { return snapshot{states(a), a.Stats(), a.hint} }

// errorFixture: 4 chunks, chunks 0-1 grown; pages [0, 10) in use, [10,
// 20) free, [20, 30) in use, the rest of chunks 0-1 free and scavenged.
func errorFixture(t *testing.T) *Allocator {
	a := newTest(t, 4)
	mustGrow(t, a, 0, 2)
	if _, err := a.allocRange(pg(0), 30); err != nil {
		t.Fatal(err)
	}
	if err := a.Free(pg(10), 10); err != nil {
		t.Fatal(err)
	}
	return a
}

// expectError runs op on the fixture and checks it fails with want and
// leaves every page, count and the hint unchanged.
func expectError(t *testing.T, want error, op func(a *Allocator) error) {
	t.Helper()
	a := errorFixture(t)
	before := snap(a)
	if err := op(a); !errors.Is(err, want) {
		t.Fatalf("error %v, want %v", err, want)
	}
	if d := cmp.Diff(before, snap(a)); d != "" {
		t.Fatalf("state changed (-before +after):\n%s", d)
	}
	mustInvariants(t, a)
}

func allocErr(n uintptr) func(*Allocator) error {
	return func(a *Allocator) error { _, _, err := a.Alloc(n); return err }
}

func TestErrAllocZeroPages(t *testing.T) { expectError(t, errInvalidRange, allocErr(0)) }

func TestErrAllocNegativePages(t *testing.T) {
	n := -1
	expectError(t, errInvalidRange, allocErr(uintptr(n)))
}

func TestErrAllocMoreThanReservation(t *testing.T) {
	expectError(t, errInvalidRange, allocErr(4*ChunkPages+1))
}

func TestErrAllocNoSpace(t *testing.T) {
	expectError(t, ErrNoSpace, allocErr(2*ChunkPages)) // grown but fragmented
}

func TestErrAllocNoSpaceUngrown(t *testing.T) {
	expectError(t, ErrNoSpace, allocErr(3*ChunkPages)) // more than grown, within reservation
}

func TestErrAllocRangeZeroPages(t *testing.T) {
	expectError(t, errInvalidRange, func(a *Allocator) error { _, err := a.allocRange(pg(12), 0); return err })
}

func TestErrAllocRangeMisaligned(t *testing.T) {
	expectError(t, errInvalidRange, func(a *Allocator) error { _, err := a.allocRange(pg(12)+1, 1); return err })
}

func TestErrAllocRangeBelowReservation(t *testing.T) {
	expectError(t, errInvalidRange, func(a *Allocator) error { _, err := a.allocRange(testBase-PageSize, 2); return err })
}

func TestErrAllocRangeBeyondReservation(t *testing.T) {
	expectError(t, errInvalidRange, func(a *Allocator) error { _, err := a.allocRange(pg(4*ChunkPages-1), 2); return err })
}

func TestErrAllocRangeHugeLength(t *testing.T) {
	n := -2
	expectError(t, errInvalidRange, func(a *Allocator) error { _, err := a.allocRange(pg(12), uintptr(n)); return err })
}

func TestErrAllocRangeNotFree(t *testing.T) {
	expectError(t, errAlreadyInUse, func(a *Allocator) error { _, err := a.allocRange(pg(15), 10); return err })
}

func TestErrAllocRangeNotGrown(t *testing.T) {
	expectError(t, errAlreadyInUse, func(a *Allocator) error { _, err := a.allocRange(pg(2*ChunkPages-1), 2); return err })
}

func TestErrFreeZeroPages(t *testing.T) {
	expectError(t, errInvalidRange, func(a *Allocator) error { return a.Free(pg(0), 0) })
}

func TestErrFreeMisaligned(t *testing.T) {
	expectError(t, errInvalidRange, func(a *Allocator) error { return a.Free(pg(0)+8, 1) })
}

func TestErrFreeBeyondReservation(t *testing.T) {
	expectError(t, errInvalidRange, func(a *Allocator) error { return a.Free(pg(4*ChunkPages), 1) })
}

func TestErrFreeFree(t *testing.T) {
	expectError(t, errNotAllocated, func(a *Allocator) error { return a.Free(pg(10), 1) })
}

func TestErrFreePartlyAllocated(t *testing.T) {
	expectError(t, errNotAllocated, func(a *Allocator) error { return a.Free(pg(5), 10) })
}

func TestErrFreeNotGrown(t *testing.T) {
	expectError(t, errNotAllocated, func(a *Allocator) error { return a.Free(pg(3*ChunkPages), 1) })
}

func TestErrFreeScavengedNotAllocated(t *testing.T) {
	expectError(t, errNotAllocated, func(a *Allocator) error { return a.FreeScavenged(pg(25), 10) })
}

func TestErrGrowTwice(t *testing.T) {
	expectError(t, errAlreadyGrown, func(a *Allocator) error { return grow(a, pg(0), ChunkPages) })
}

func TestErrGrowOverlapping(t *testing.T) {
	expectError(t, errAlreadyGrown, func(a *Allocator) error { return grow(a, pg(ChunkPages), 2*ChunkPages) })
}

func TestErrGrowMisaligned(t *testing.T) {
	expectError(t, errInvalidRange, func(a *Allocator) error { return grow(a, pg(2*ChunkPages+1), ChunkPages) })
}

func TestErrGrowPartialChunk(t *testing.T) {
	expectError(t, errInvalidRange, func(a *Allocator) error { return grow(a, pg(2*ChunkPages), ChunkPages/2) })
}

func TestErrGrowBeyondReservation(t *testing.T) {
	expectError(t, errInvalidRange, func(a *Allocator) error { return grow(a, pg(3*ChunkPages), 2*ChunkPages) })
}

func TestErrGrowZero(t *testing.T) {
	expectError(t, errInvalidRange, func(a *Allocator) error { return grow(a, pg(2*ChunkPages), 0) })
}

func TestErrAllocCacheNotEmpty(t *testing.T) {
	expectError(t, errInvalidRange, func(a *Allocator) error {
		c := Cache{base: pg(64), freeBits: 1}
		return a.AllocCache(&c)
	})
}

func TestErrAllocCacheNoSpace(t *testing.T) {
	a := newTest(t, 1)
	var c Cache
	if err := a.AllocCache(&c); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("AllocCache on an ungrown heap: %v", err)
	}
	mustGrow(t, a, 0, 1)
	mustAlloc(t, a, ChunkPages)
	if err := a.AllocCache(&c); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("AllocCache on a full heap: %v", err)
	}
}

func TestErrScavengeCandidateBadAlign(t *testing.T) {
	for _, tt := range []struct{ max, align uintptr }{{8, 0}, {8, 3}, {2048, 1024}, {4, 8}} {
		expectError(t, errNone, func(a *Allocator) error {
			if _, _, ok := a.ScavengeCandidate(tt.max, tt.align); ok {
				t.Errorf("ScavengeCandidate(%d, %d) succeeded", tt.max, tt.align)
			}
			return errNone
		})
	}
}

var errNone = errors.New("no error")

// FlushCache of a cache the allocator did not hand out returns an error
// and changes nothing (its caller holds the heap lock: it must not panic).
func TestErrFlushCacheForeign(t *testing.T) {
	for _, tt := range []struct {
		c    Cache
		want error
	}{
		{Cache{base: pg(0), freeBits: 1 << 12}, errNotAllocated},                    // page 12 is free, not cached
		{Cache{base: pg(0) + PageSize, freeBits: 1}, errInvalidRange},               // misaligned
		{Cache{base: testBase - CachePages*PageSize, freeBits: 1}, errInvalidRange}, // below the allocator
	} {
		expectError(t, tt.want, func(a *Allocator) error {
			c := tt.c
			err := a.FlushCache(&c)
			if c != tt.c {
				t.Errorf("FlushCache(%+v) changed the cache to %+v", tt.c, c)
			}
			return err
		})
	}
}

func TestErrNew(t *testing.T) {
	for _, tt := range []struct{ base, size uintptr }{
		{0, ChunkBytes},
		{testBase, 0},
		{testBase + PageSize, ChunkBytes},
		{testBase, ChunkBytes + PageSize},
		{^uintptr(0) &^ (ChunkBytes - 1), 2 * ChunkBytes},
	} {
		if _, err := New(tt.base, tt.size, nil); !errors.Is(err, errInvalidRange) {
			t.Errorf("New(%#x, %#x) = %v", tt.base, tt.size, err)
		}
	}
}

func TestErrClosed(t *testing.T) {
	a, err := New(testBase, ChunkBytes, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := grow(a, testBase, ChunkPages); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); !errors.Is(err, errClosed) {
		t.Errorf("second Close: %v", err)
	}
	if _, _, err := a.Alloc(1); !errors.Is(err, errClosed) {
		t.Errorf("Alloc: %v", err)
	}
	if err := a.Free(testBase, 1); !errors.Is(err, errClosed) {
		t.Errorf("Free: %v", err)
	}
	if err := grow(a, testBase, ChunkPages); !errors.Is(err, errClosed) {
		t.Errorf("Grow: %v", err)
	}
	var c Cache
	if err := a.AllocCache(&c); !errors.Is(err, errClosed) {
		t.Errorf("AllocCache: %v", err)
	}
	if a.State(testBase) != NotGrown || a.Stats() != (Stats{}) {
		t.Error("closed allocator reports pages")
	}
	if _, _, ok := a.ScavengeCandidate(8, 1); ok {
		t.Error("ScavengeCandidate on a closed allocator")
	}
}

// A summary that promises a run its bitmap lacks is an internal invariant
// broken. Alloc and AllocCache report it as errCorrupt rather than
// panicking: their caller holds the heap lock and panics once it is
// released.
func TestErrCorruptSummary(t *testing.T) {
	for _, hinted := range []bool{true, false} {
		a := newTest(t, 4)
		mustGrow(t, a, 0, 2)
		if _, err := a.allocRange(pg(0), 2*ChunkPages); err != nil {
			t.Fatal(err)
		}
		// Five free pages that are not: in the hint's chunk (the bitmap
		// fast path) or in the next one (the tree walk).
		a.hint = 0
		bad := uint(1)
		if hinted {
			bad = 0
		}
		a.setLeaf(bad, packSummary(0, 5, 0))
		if _, _, err := a.Alloc(3); !errors.Is(err, errCorrupt) || !strings.Contains(err.Error(), "promises a run of 3 pages") {
			t.Fatalf("hinted %v: Alloc over a corrupt summary: %v, want errCorrupt", hinted, err)
		}
		var c Cache
		if err := a.AllocCache(&c); !errors.Is(err, errCorrupt) || c != (Cache{}) {
			t.Fatalf("hinted %v: AllocCache over a corrupt summary: %v (cache %+v), want errCorrupt", hinted, err, c)
		}
	}
}
