package pages

import (
	"math/rand/v2"
	"testing"
)

// TakeScavengeRuns takes runs of any length, down to one page, highest
// chunk first, within the page and run quotas; ReturnRuns puts them back
// released, and counts and summaries follow.
func TestTakeScavengeRuns(t *testing.T) {
	const C = ChunkPages
	// Single pages every other page in chunk 0, a 3-page run and a long
	// run in chunk 2, one page at the top of chunk 3.
	var free [][2]uint
	for p := uint(1); p < 200; p += 2 {
		free = append(free, [2]uint{p, 1})
	}
	free = append(free, [2]uint{2*C + 10, 3}, [2]uint{2*C + 100, 150}, [2]uint{4*C - 1, 1})
	a := scavFixture(t, free...)
	before := a.Stats()

	runs, fresh := a.TakeScavengeRuns(64, 1000, 0, nil)
	// Chunk 3's page, then the top 63 pages of chunk 2's long run.
	if len(runs) != 2 || runs[0] != (Run{pg(4*C - 1), 1, 1}) || runs[1] != (Run{pg(2*C + 250 - 63), 63, 63}) || fresh != 64 {
		t.Fatalf("first take: %v, fresh %d", runs, fresh)
	}
	mustInvariants(t, a)
	if err := a.ReturnRuns(runs, true); err != nil {
		t.Fatal(err)
	}
	mustInvariants(t, a)
	total := fresh
	// The rest, at most 10 runs a call.
	for {
		runs, fresh = a.TakeScavengeRuns(1<<20, 10, 0, nil)
		if len(runs) == 0 {
			break
		}
		if len(runs) > 10 {
			t.Fatalf("%d runs, want <= 10", len(runs))
		}
		for _, r := range runs {
			if a.State(r.Base) != InUse || r.Fresh != r.Pages {
				t.Fatalf("run %+v: state %v", r, a.State(r.Base))
			}
		}
		mustInvariants(t, a)
		if err := a.ReturnRuns(runs, true); err != nil {
			t.Fatal(err)
		}
		total += fresh
		mustInvariants(t, a)
	}
	after := a.Stats()
	if want := uintptr(100 + 3 + 150 + 1); total != want || after.Scavenged-before.Scavenged != want || after.Free != before.Free {
		t.Fatalf("released %d pages, want %d; stats before %+v after %+v", total, want, before, after)
	}
}

// A gap of released pages between two runs is taken along (and not
// counted fresh) when maxGap allows it, so one madvise covers both; a gap
// with an in-use page is never taken.
func TestTakeScavengeRunsGaps(t *testing.T) {
	a := scavFixture(t, [2]uint{10, 30})
	// Release pages [20, 25) so [10, 20) and [25, 40) are separate runs.
	r, fresh := a.TakeScavengeRuns(1<<20, 100, 0, nil)
	if len(r) != 1 || fresh != 30 {
		t.Fatalf("%v", r)
	}
	if err := a.ReturnRuns(r, false); err != nil { // as if the release failed
		t.Fatal(err)
	}
	if _, err := a.allocRange(pg(20), 5); err != nil {
		t.Fatal(err)
	}
	if err := a.FreeScavenged(pg(20), 5); err != nil {
		t.Fatal(err)
	}
	mustInvariants(t, a)
	r, fresh = a.TakeScavengeRuns(1<<20, 100, 4, nil)
	if len(r) != 2 || fresh != 25 {
		t.Fatalf("gap of 5 with maxGap 4: %v, fresh %d", r, fresh)
	}
	if err := a.ReturnRuns(r, false); err != nil {
		t.Fatal(err)
	}
	r, fresh = a.TakeScavengeRuns(1<<20, 100, 5, nil)
	if len(r) != 1 || r[0] != (Run{pg(10), 30, 25}) || fresh != 25 {
		t.Fatalf("gap of 5 with maxGap 5: %v, fresh %d", r, fresh)
	}
	mustInvariants(t, a)
	before := a.Stats()
	if err := a.ReturnRuns(r, true); err != nil {
		t.Fatal(err)
	}
	mustInvariants(t, a)
	if st := a.Stats(); st.Scavenged != before.Scavenged+30 || a.State(pg(22)) != FreeScavenged {
		t.Fatalf("stats %+v", st)
	}
	// An in-use page in the gap: no merge.
	b := scavFixture(t, [2]uint{10, 5}, [2]uint{16, 5})
	if r, _ := b.TakeScavengeRuns(1<<20, 100, 64, nil); len(r) != 2 {
		t.Fatalf("merged across an in-use page: %v", r)
	}
}

// ReturnRuns refuses a run that is not wholly in use, changing nothing.
func TestReturnRunsRefuses(t *testing.T) {
	a := scavFixture(t, [2]uint{10, 4})
	r, _ := a.TakeScavengeRuns(100, 100, 0, nil)
	before := a.Stats()
	if err := a.ReturnRuns([]Run{r[0], {Base: pg(100), Pages: 1}, {Base: pg(ChunkPages - 1), Pages: 2}}, true); err == nil {
		t.Fatal("ReturnRuns accepted a run crossing a chunk border")
	}
	if a.Stats() != before || a.State(pg(10)) != InUse {
		t.Fatal("a refused ReturnRuns changed the allocator")
	}
	if err := a.ReturnRuns(r, true); err != nil {
		t.Fatal(err)
	}
	if err := a.ReturnRuns(r, true); err == nil {
		t.Fatal("ReturnRuns accepted free pages")
	}
	mustInvariants(t, a)
}

// Random frees, takes and returns (released or not) keep every invariant,
// and every free unreleased page is eventually taken.
func TestTakeScavengeRunsRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for iter := range 20 {
		a := scavFixture(t)
		for range 300 {
			p := uint(r.IntN(4*ChunkPages - 8))
			n := uint(1 + r.IntN(8))
			if a.rangeIs(p, n, true) {
				if err := a.Free(pg(p), uintptr(n)); err != nil {
					t.Fatal(err)
				}
			}
		}
		for round := 0; ; round++ {
			runs, _ := a.TakeScavengeRuns(uintptr(1+r.IntN(600)), 1+r.IntN(50), uintptr(r.IntN(8)), nil)
			if len(runs) == 0 {
				break
			}
			if err := checkInvariants(a); err != nil {
				t.Fatalf("iter %d round %d: %v", iter, round, err)
			}
			ok := r.IntN(4) != 0
			if err := a.ReturnRuns(runs, ok); err != nil {
				t.Fatal(err)
			}
			if err := checkInvariants(a); err != nil {
				t.Fatalf("iter %d round %d after return: %v", iter, round, err)
			}
			if round > 10000 {
				t.Fatal("never done")
			}
		}
		if st := a.Stats(); st.Free != st.Scavenged {
			t.Fatalf("iter %d: %d free pages, %d released", iter, st.Free, st.Scavenged)
		}
	}
}
