package pages

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fuzzConfigs are the reservations the fuzzer picks from: small enough that
// comparing every page each step is cheap, shaped to reach partial summary
// nodes, several levels, and (with a level cap) a wide top level searched
// through the live bitmap.
var fuzzConfigs = [...]struct {
	nchunks  uint
	levelCap int
}{
	{16, maxLevels}, {1, maxLevels}, {9, maxLevels}, {24, maxLevels},
	{64, maxLevels}, {65, maxLevels}, {40, 1}, {70, 2},
}

// byteReader decodes fuzz input; past the end it yields zeros.
type byteReader struct{ b []byte }

func (r *byteReader) byte() uint {
	if len(r.b) == 0 {
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return uint(v)
}

func (r *byteReader) u16() uint { return r.byte() | r.byte()<<8 }

// pages picks a page count: mostly small, sometimes chunk-sized or larger,
// rarely zero or beyond the reservation.
func (r *byteReader) pages(npages uint) uint {
	v := r.byte()
	switch {
	case v < 128:
		return v%16 + 1
	case v < 192:
		return v%64*8 + 1
	case v < 250:
		return r.u16()%(npages+1) + 1
	case v < 253:
		return 0
	}
	return npages + 1 + r.byte()
}

func FuzzAllocator(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 3, 2, 2})
	f.Add([]byte{3, 0, 5, 0, 1, 1, 200, 0, 2, 1, 0, 3, 0, 5, 8, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &byteReader{data}
		cfg := fuzzConfigs[r.byte()%uint(len(fuzzConfigs))]
		a := newTestCap(t, cfg.nchunks, cfg.levelCap)
		npages := cfg.nchunks * ChunkPages
		m := newModel(npages)
		var caches [2]Cache
		var mcaches [2]modelCache
		var allocs [][2]uint // runs handed out, for frees that hit
		step := 0
		check := func(op string, gotErr, wantErr error) {
			t.Helper()
			if (gotErr == nil) != (wantErr == nil) || wantErr != nil && !errors.Is(gotErr, wantErr) {
				t.Fatalf("step %d %s: error %v, model %v", step, op, gotErr, wantErr)
			}
		}
		for len(r.b) > 0 && step < 200 {
			step++
			var op string
			switch r.byte() % 10 {
			case 0: // grow 1-3 chunks at chunk k
				v := r.byte()
				k, n := v%cfg.nchunks, 1+v/64%3
				op = fmt.Sprintf("Grow(chunk %d, %d chunks)", k, n)
				want := m.grow(k*ChunkPages, n*ChunkPages)
				check(op, grow(a, pg(k*ChunkPages), uintptr(n)*ChunkPages), want)
			case 1, 2: // alloc n
				n := r.pages(npages)
				op = fmt.Sprintf("Alloc(%d)", n)
				wp, ws, werr := m.alloc(n)
				base, scav, err := a.Alloc(uintptr(n))
				check(op, err, werr)
				if werr == nil {
					if base != pg(wp) || scav != uintptr(ws) {
						t.Fatalf("step %d %s = %#x, %d; model %#x, %d", step, op, base, scav, pg(wp), ws)
					}
					allocs = append(allocs, [2]uint{wp, n})
				}
			case 3: // alloc range
				p, n := r.u16()%(npages+8), r.pages(npages)
				op = fmt.Sprintf("allocRange(%d, %d)", p, n)
				ws, werr := m.allocRange(p, n)
				scav, err := a.allocRange(pg(p), uintptr(n))
				check(op, err, werr)
				if werr == nil {
					if scav != uintptr(ws) {
						t.Fatalf("step %d %s = %d; model %d", step, op, scav, ws)
					}
					allocs = append(allocs, [2]uint{p, n})
				}
			case 4, 5: // free (scavenged when the selector is odd): a recorded run, part of one, or anything
				sel := r.byte()
				var p, n uint
				if len(allocs) > 0 && sel < 200 {
					i := sel % uint(len(allocs))
					p, n = allocs[i][0], allocs[i][1]
					if sel&4 != 0 && n > 1 { // the upper part only
						cut := r.byte()%(n-1) + 1
						p, n = p+cut, n-cut
						allocs[i][1] = cut
					} else {
						allocs = slices.Delete(allocs, int(i), int(i)+1)
					}
				} else {
					p, n = r.u16()%(npages+8), r.pages(npages)
				}
				if m.inRange(p, n) && slices.Contains(m.cacheFree[p:p+n], true) {
					continue // a Cache owns these pages: freeing them is the caller's bug
				}
				scav := sel&1 != 0
				op = fmt.Sprintf("Free(%d, %d, scavenged %v)", p, n, scav)
				werr := m.free(p, n, scav)
				var err error
				if scav {
					err = a.FreeScavenged(pg(p), uintptr(n))
				} else {
					err = a.Free(pg(p), uintptr(n))
				}
				check(op, err, werr)
			case 6: // scavenge candidate
				v := r.byte()
				align, maxp := uint(1)<<(v%10), r.pages(npages)
				op = fmt.Sprintf("ScavengeCandidate(%d, %d)", maxp, align)
				wp, wn, wok := m.scavengeCandidate(maxp, align)
				base, n, ok := a.ScavengeCandidate(uintptr(maxp), uintptr(align))
				if ok != wok || ok && (base != pg(wp) || n != uintptr(wn)) {
					t.Fatalf("step %d %s = %#x, %d, %v; model %#x, %d, %v", step, op, base, n, ok, pg(wp), wn, wok)
				}
				if ok {
					allocs = append(allocs, [2]uint{wp, wn})
				}
			case 7: // cache take
				i := r.byte() % 2
				op = fmt.Sprintf("AllocCache(%d)", i)
				check(op, a.AllocCache(&caches[i]), m.allocCache(&mcaches[i]))
			case 8: // cache alloc
				v := r.byte()
				i, n := v%2, v/2%18
				op = fmt.Sprintf("cache %d Alloc(%d)", i, n)
				wp, ws, wok := m.cacheAlloc(&mcaches[i], n)
				base, scav := caches[i].Alloc(uintptr(n))
				if (base != 0) != wok || wok && (base != pg(wp) || scav != uintptr(ws)) {
					t.Fatalf("step %d %s = %#x, %d; model %#x, %d, %v", step, op, base, scav, pg(wp), ws, wok)
				}
				if wok {
					allocs = append(allocs, [2]uint{wp, n})
				}
			case 9: // cache flush
				i := r.byte() % 2
				op = fmt.Sprintf("FlushCache(%d)", i)
				if err := a.FlushCache(&caches[i]); err != nil {
					t.Fatalf("step %d %s: %v", step, op, err)
				}
				m.flushCache(&mcaches[i])
			}
			for i := range caches {
				want := Cache{freeBits: mcaches[i].free, scavBits: mcaches[i].scav}
				if want.freeBits != 0 {
					want.base = pg(mcaches[i].base)
				}
				got := caches[i]
				if got.freeBits == 0 {
					got.base = 0 // an exhausted cache's base is immaterial
				}
				if got != want {
					t.Fatalf("step %d %s: cache %d %+v, model %+v", step, op, i, got, want)
				}
			}
			if got := states(a); !slices.Equal(got, m.pages) {
				t.Fatalf("step %d %s: page states differ (-allocator +model):\n%s", step, op, cmp.Diff(got, m.pages))
			}
			if d := cmp.Diff(m.stats(), a.Stats()); d != "" {
				t.Fatalf("step %d %s: stats differ (-model +allocator):\n%s", step, op, d)
			}
			if err := checkInvariants(a); err != nil {
				t.Fatalf("step %d %s: %v", step, op, err)
			}
		}
	})
}
