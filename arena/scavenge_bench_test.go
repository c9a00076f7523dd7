package arena

import (
	"cmp"
	"fmt"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/offheap/offheap/mmap"
	"github.com/offheap/offheap/pages"
	"github.com/offheap/offheap/scavenge"
)

// Scavenger benchmarks; results and commands are in BENCHMARKS.md
// ("## scavenger").

// Span allocation (with first touch of every OS page) over released pages
// versus pages that were never released.
func BenchmarkScavAllocSpan(b *testing.B) {
	const size, n = 256 << 10, 64 // 16 MiB per round
	for _, mode := range []mmap.DecommitMode{DecommitDontNeed, DecommitFree, DecommitStrict} {
		for _, released := range []bool{false, true} {
			name := fmt.Sprintf("mode=%v/pages=committed", mode)
			if released {
				name = fmt.Sprintf("mode=%v/pages=released", mode)
			}
			b.Run(name, func(b *testing.B) {
				h := newScavHeap(b, Config{Reserve: 256 << 20, ScavengeDelay: -1, Decommit: mode})
				ps := make([]unsafe.Pointer, n)
				b.SetBytes(size)
				b.ResetTimer()
				for i := 0; i < b.N; i += n {
					for j := range ps {
						p, err := h.Alloc(size)
						if err != nil {
							b.Fatal(err)
						}
						scavTouch(p, size)
						ps[j] = p
					}
					for _, p := range ps {
						h.Free(p)
					}
					if released {
						b.StopTimer()
						h.Scavenge()
						b.StartTimer()
					}
				}
			})
		}
	}
}

// Release throughput of Scavenge over 256 MiB of touched free memory,
// and the longest heap-lock hold in the cycle.
func BenchmarkScavThroughput(b *testing.B) {
	for _, mode := range []mmap.DecommitMode{DecommitDontNeed, DecommitFree, DecommitStrict} {
		for _, huge := range []bool{false, true} {
			b.Run(fmt.Sprintf("mode=%v/huge=%v", mode, huge), func(b *testing.B) {
				const total = 256 << 20
				h := newScavHeap(b, Config{Reserve: 512 << 20, ScavengeDelay: -1, Decommit: mode, HugePages: huge})
				var busy time.Duration
				var maxHold int64
				for range b.N {
					b.StopTimer()
					ps := scavFill(b, h, total)
					scavFreeAll(b, h, ps)
					h.scav.maxHold.Store(0)
					b.StartTimer()
					t0 := time.Now()
					rel := h.Scavenge()
					busy += time.Since(t0)
					if rel < total*9/10 {
						b.Fatalf("released %d", rel)
					}
					maxHold = max(maxHold, h.scav.maxHold.Load())
				}
				b.ReportMetric(float64(b.N)*total/(1<<30)/busy.Seconds(), "GiB/s")
				b.ReportMetric(float64(maxHold), "max-lock-ns")
			})
		}
	}
}

// The longest heap-lock hold of a release step, measured many times on a
// fragmented heap (every other run free: 64 KiB runs, or single 8 KiB
// pages, so a step takes 64 runs of a chunk), per step: the figure to
// hold against the 2 µs-per-chunk target.
func BenchmarkScavLockHold(b *testing.B) {
	for _, hole := range []int{64 << 10, 8 << 10} {
		b.Run(fmt.Sprintf("holes=%dKiB", hole>>10), func(b *testing.B) {
			h := newScavHeap(b, Config{Reserve: 512 << 20, ScavengeDelay: -1})
			var ps []unsafe.Pointer
			var err error
			for range 64 << 20 / hole {
				var p unsafe.Pointer
				p, err = h.Alloc(hole)
				if err != nil {
					b.Fatal(err)
				}
				scavTouch(p, hole)
				ps = append(ps, p)
			}
			slices.SortFunc(ps, func(a, b unsafe.Pointer) int { return cmp.Compare(uintptr(a), uintptr(b)) })
			for i := 0; i < len(ps); i += 2 {
				h.Free(ps[i])
			}
			var holds []time.Duration
			var buf []pages.Run
			b.ResetTimer()
			for range b.N {
				h.scav.maxHold.Store(0)
				var n uintptr
				n, buf, _ = h.releaseRuns(scavengeBatchPages, buf)
				if n == 0 {
					// All holes released: take them (first fit reuses them) and
					// free them again, unreleased.
					b.StopTimer()
					for i := 0; i < len(ps); i += 2 {
						if ps[i], err = h.Alloc(hole); err != nil {
							b.Fatal(err)
						}
					}
					for i := 0; i < len(ps); i += 2 {
						h.Free(ps[i])
					}
					b.StartTimer()
					continue
				}
				holds = append(holds, time.Duration(h.scav.maxHold.Load()))
			}
			b.StopTimer()
			reportHolds(b, holds)
		})
	}
}

func reportHolds(b *testing.B, holds []time.Duration) {
	if len(holds) == 0 {
		return
	}
	sorted := append([]time.Duration(nil), holds...)
	for i := 1; i < len(sorted); i++ { // insertion sort: small n
		for j := i; j > 0 && sorted[j] < sorted[j-1]; j-- {
			sorted[j], sorted[j-1] = sorted[j-1], sorted[j]
		}
	}
	b.ReportMetric(float64(sorted[len(sorted)/2]), "p50-lock-ns")
	b.ReportMetric(float64(sorted[len(sorted)*99/100]), "p99-lock-ns")
	b.ReportMetric(float64(sorted[len(sorted)-1]), "max-lock-ns")
}

// Allocation throughput while the background scavenger runs, against it
// off. The workload keeps freeing and reallocating memory in bulk, so
// with a short delay and no retention the scavenger is busy releasing.
func BenchmarkScavAllocWhileScavenging(b *testing.B) {
	for _, v := range []struct {
		name string
		cfg  Config
	}{
		{"scavenger=off", Config{ScavengeDelay: -1}},
		{"scavenger=default", Config{}},
		{"scavenger=eager", Config{ScavengeDelay: 8 * time.Millisecond, RetainBytes: -1, RetainFraction: -1}},
	} {
		b.Run(v.name, func(b *testing.B) {
			cfg := v.cfg
			cfg.Reserve = 1 << 30
			h := newScavHeap(b, cfg)
			sizes := []int{64, 200, 1024, 4000, 40 << 10, 256 << 10}
			const live = 4096
			ps := make([]unsafe.Pointer, live)
			b.ResetTimer()
			for i := range b.N {
				j := i % live
				if ps[j] != nil {
					h.Free(ps[j])
				}
				size := sizes[i%len(sizes)]
				p, err := h.Alloc(size)
				if err != nil {
					b.Fatal(err)
				}
				*(*byte)(p) = 1
				ps[j] = p
				if i%(8*live) == 8*live-1 { // bulk free: memory for the scavenger
					for k := range ps {
						if ps[k] != nil {
							h.Free(ps[k])
							ps[k] = nil
						}
					}
				}
			}
			b.StopTimer()
			st := h.Stats()
			b.ReportMetric(float64(st.ScavengeReleased)/float64(b.N), "released-B/op")
			for _, p := range ps {
				if p != nil {
					h.Free(p)
				}
			}
		})
	}
}

// One idle Step of the background policy (sample the heap, nothing due):
// the worker's steady-state cost. At 8 steps per second (Delay 1 s) the
// share of a core is 8 × this / 1 s.
func BenchmarkScavStepIdle(b *testing.B) {
	h := newScavHeap(b, Config{Reserve: 64 << 20, ScavengeDelay: -1})
	s := scavenge.New(&scavHeap{h: h}, scavenge.Config{})
	b.ResetTimer()
	for range b.N {
		s.Step()
	}
	b.StopTimer()
	perStep := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(perStep*8/1e9*100, "%core-at-8Hz")
}
