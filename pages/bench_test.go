package pages

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// fragment marks runs of pages in use so that about half the grown pages
// stay free in short runs: in-use and free runs of 1-16 pages alternate, and
// one free run in 128 is long (1024-4095 pages) so that big requests fit
// too. The pattern comes from a fixed seed.
func fragment(t testing.TB, a *Allocator) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	for p := uint(0); p < a.npages; {
		used := uint(rng.IntN(16) + 1)
		used = min(used, a.npages-p)
		if _, err := a.allocRange(pg(p), uintptr(used)); err != nil {
			t.Fatal(err)
		}
		p += used
		free := uint(rng.IntN(16) + 1)
		if rng.IntN(128) == 0 {
			free = uint(rng.IntN(3072) + 1024)
		}
		p += free
	}
}

// newFragmented is a 16 GiB grown reservation, fragmented.
func newFragmented(b *testing.B) *Allocator {
	const size = 16 << 30
	a := newTest(b, size/ChunkBytes)
	if err := grow(a, testBase, size/PageSize); err != nil {
		b.Fatal(err)
	}
	fragment(b, a)
	return a
}

// BenchmarkAllocFree allocates and frees runs on a fragmented 16 GiB heap;
// one op is one Alloc plus one Free.
func BenchmarkAllocFree(b *testing.B) {
	for _, n := range []uintptr{1, 8, 64, 512, 2000} {
		b.Run(fmt.Sprintf("pages=%d", n), func(b *testing.B) {
			a := newFragmented(b)
			st := a.Stats()
			b.ReportMetric(float64(st.Free)/float64(st.Grown), "free-fraction")
			var sum uintptr
			b.ResetTimer()
			for range b.N {
				base, _, err := a.Alloc(n)
				if err != nil {
					b.Fatal(err)
				}
				sum += base
				if err := a.Free(base, n); err != nil {
					b.Fatal(err)
				}
			}
			if sum == 0 {
				b.Fatal("no allocation")
			}
		})
	}
}

// BenchmarkAllocOnly measures Alloc alone: 1-page allocations walk up the
// fragmented heap; the heap is rebuilt (timer stopped) when it fills.
func BenchmarkAllocOnly(b *testing.B) {
	a := newFragmented(b)
	var sum uintptr
	b.ResetTimer()
	for range b.N {
		base, _, err := a.Alloc(1)
		if err != nil {
			b.StopTimer()
			_ = a.Close()
			a = newFragmented(b)
			b.StartTimer()
			base, _, _ = a.Alloc(1)
		}
		sum += base
	}
	if sum == 0 {
		b.Fatal("no allocation")
	}
}

// BenchmarkCache measures the worker page cache.
func BenchmarkCache(b *testing.B) {
	// Alloc1: the lock-free path alone; an empty cache is refilled with the
	// same block by resetting its bits.
	b.Run("Alloc1", func(b *testing.B) {
		c := Cache{base: testBase, freeBits: ^uint64(0), scavBits: 0xf0f0}
		var sum uintptr
		for range b.N {
			base, scav := c.Alloc(1)
			if base == 0 {
				c.freeBits, c.scavBits = ^uint64(0), 0xf0f0
				base, scav = c.Alloc(1)
			}
			sum += base + scav
		}
		if sum == 0 {
			b.Fatal("no allocation")
		}
	})
	// Refill: 1-page allocations with the real refill under the
	// allocator: when the cache runs dry its 64 pages are freed and a new
	// block is taken with AllocCache.
	b.Run("Alloc1-refill", func(b *testing.B) {
		a := newFragmented(b)
		var c Cache
		var sum uintptr
		var taken []uintptr
		b.ResetTimer()
		for range b.N {
			base, _ := c.Alloc(1)
			if base == 0 {
				for _, p := range taken {
					if err := a.Free(p, 1); err != nil {
						b.Fatal(err)
					}
				}
				taken = taken[:0]
				if err := a.AllocCache(&c); err != nil {
					b.Fatal(err)
				}
				base, _ = c.Alloc(1)
			}
			taken = append(taken, base)
			sum += base
		}
		if sum == 0 {
			b.Fatal("no allocation")
		}
	})
}

// newFull grows a whole reservation of size bytes and allocates every page
// but the top free pages, so a search from the bottom must walk the full
// height of the tree to the last chunk.
func newFull(b *testing.B, size uintptr, free uint) *Allocator {
	a := newTest(b, uint(size/ChunkBytes))
	if err := grow(a, testBase, size/PageSize); err != nil {
		b.Fatal(err)
	}
	if _, err := a.allocRange(testBase, size/PageSize-uintptr(free)); err != nil {
		b.Fatal(err)
	}
	return a
}

// findOnce resets the hint so the search starts from the bottom, then
// allocates and frees n pages.
func findOnce(b *testing.B, a *Allocator, n uintptr) uintptr {
	a.hint = 0
	base, _, err := a.Alloc(n)
	if err != nil {
		b.Fatal(err)
	}
	if err := a.Free(base, n); err != nil {
		b.Fatal(err)
	}
	return base
}

var findSizes = []struct {
	name string
	size uintptr
}{{"1GiB", 1 << 30}, {"1TiB", 1 << 40}}

// BenchmarkFind: a search from a reset hint that must cross the whole
// reservation (all of it grown, all in use but the top 1000 pages), for 1
// page and for a 600-page run that spans a chunk border.
func BenchmarkFind(b *testing.B) {
	for _, n := range []uintptr{1, 600} {
		for _, s := range findSizes {
			b.Run(fmt.Sprintf("%s/pages=%d", s.name, n), func(b *testing.B) {
				a := newFull(b, s.size, 1000)
				var sum uintptr
				b.ResetTimer()
				for range b.N {
					sum += findOnce(b, a, n)
				}
				if sum == 0 {
					b.Fatal("no allocation")
				}
			})
		}
	}
}

// BenchmarkFindRatio times the same search at 1 GiB and at 1 TiB in one
// benchmark and reports the ratio (target: at most 2).
func BenchmarkFindRatio(b *testing.B) {
	small := newFull(b, 1<<30, 1000)
	big := newFull(b, 1<<40, 1000)
	var sum uintptr
	b.ResetTimer()
	var dSmall, dBig time.Duration
	for _, n := range []uintptr{1, 600} {
		t0 := time.Now()
		for range b.N {
			sum += findOnce(b, small, n)
		}
		t1 := time.Now()
		for range b.N {
			sum += findOnce(b, big, n)
		}
		dSmall += t1.Sub(t0)
		dBig += time.Since(t1)
	}
	if sum == 0 {
		b.Fatal("no allocation")
	}
	b.ReportMetric(float64(dSmall.Nanoseconds())/float64(2*b.N), "ns/find-1GiB")
	b.ReportMetric(float64(dBig.Nanoseconds())/float64(2*b.N), "ns/find-1TiB")
	b.ReportMetric(float64(dBig)/float64(dSmall), "1TiB/1GiB")
}
