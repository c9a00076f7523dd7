package pages

import (
	"testing"
)

// scavFixture: 4 chunks grown and allocated, then the listed runs freed
// (unscavenged).
func scavFixture(t *testing.T, free ...[2]uint) *Allocator {
	a := newTest(t, 4)
	mustGrow(t, a, 0, 4)
	mustAlloc(t, a, 4*ChunkPages)
	for _, r := range free {
		if err := a.Free(pg(r[0]), uintptr(r[1])); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

func TestScavengeCandidate(t *testing.T) {
	const C = ChunkPages
	type cand struct{ p, n uint }
	tests := []struct {
		name       string
		free       [][2]uint
		max, align uintptr
		want       []cand // in order; then none left for this max/align
	}{
		{"highest first", [][2]uint{{10, 4}, {C + 100, 4}, {3*C + 7, 2}}, 64, 1,
			[]cand{{3*C + 7, 2}, {C + 100, 4}, {10, 4}}},
		{"trimmed to max from the top", [][2]uint{{100, 20}}, 8, 1,
			[]cand{{112, 8}, {104, 8}, {100, 4}}},
		{"aligned blocks only", [][2]uint{{5, 30}}, 64, 8,
			[]cand{{8, 24}}},
		{"max rounded down to align", [][2]uint{{0, 64}}, 20, 8,
			[]cand{{48, 16}, {32, 16}, {16, 16}, {0, 16}}},
		{"too short for the alignment", [][2]uint{{9, 7}, {70, 9}}, 64, 8,
			[]cand{{72, 0}}}, // none: [72, 79) is 7 pages
		{"never crosses a chunk border", [][2]uint{{C - 16, 32}}, 64, 8,
			[]cand{{C, 16}, {C - 16, 16}}},
		{"whole chunks with chunk alignment", [][2]uint{{C, 2 * C}}, 1024, C,
			[]cand{{2 * C, C}, {C, C}}},
		{"alignment of 128 spans words", [][2]uint{{100, 300}}, 512, 128,
			[]cand{{128, 256}}},
		{"nothing free", nil, 64, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := scavFixture(t, tt.free...)
			var want []cand
			for _, c := range tt.want {
				if c.n > 0 {
					want = append(want, c)
				}
			}
			for i, w := range want {
				base, n, ok := a.ScavengeCandidate(tt.max, tt.align)
				if !ok || base != pg(w.p) || n != uintptr(w.n) {
					t.Fatalf("candidate %d = page %d, %d pages, %v; want %d, %d", i, (base-testBase)/PageSize, n, ok, w.p, w.n)
				}
				if st := a.State(base); st != InUse {
					t.Fatalf("candidate not marked in use: %v", st)
				}
				mustInvariants(t, a)
			}
			if base, n, ok := a.ScavengeCandidate(tt.max, tt.align); ok {
				t.Fatalf("extra candidate at page %d, %d pages", (base-testBase)/PageSize, n)
			}
			mustInvariants(t, a)
		})
	}
}

// TestScavengeCycle runs the scavenger's loop: take candidates, give them
// back scavenged, until nothing is left; counts must follow.
func TestScavengeCycle(t *testing.T) {
	a := scavFixture(t, [2]uint{3, 500}, [2]uint{700, 1000}, [2]uint{1800, 17})
	before := a.Stats()
	var released uintptr
	for {
		base, n, ok := a.ScavengeCandidate(16, 4)
		if !ok {
			break
		}
		if got := a.Stats().Free; got != before.Free-n {
			t.Fatalf("Free = %d while %d pages are out, want %d", got, n, before.Free-n)
		}
		if err := a.FreeScavenged(base, n); err != nil {
			t.Fatal(err)
		}
		released += n
		mustInvariants(t, a)
	}
	after := a.Stats()
	if after.Free != before.Free || after.Scavenged != before.Scavenged+released {
		t.Fatalf("before %+v, after %+v, released %d", before, after, released)
	}
	// What is left unscavenged is what no aligned 4-page block covers:
	// page 3, pages 500-502 and page 1816.
	if left := after.Free - after.Scavenged; left != 5 {
		t.Fatalf("%d pages left unscavenged, want 5", left)
	}
	if base, n, ok := a.ScavengeCandidate(16, 1); !ok || n == 0 {
		t.Fatalf("align 1 finds nothing (%#x, %d)", base, n)
	}
	// A freed page brings the chunk back into the index.
	p, _ := mustAlloc(t, a, 1)
	if err := a.Free(pg(p), 1); err != nil {
		t.Fatal(err)
	}
	mustInvariants(t, a)
}
