package bench

import (
	"fmt"
	"testing"
	"time"
	"unsafe"
)

// The testing.B benchmarks of the Go-side allocators, for `go test
// -bench`. BenchmarkPair is the classic b.N loop: one alloc+free pair
// through the Allocator interface per op. The shape benchmarks run one
// timed phase of benchPhase per b.N round (so -benchtime=1x is one
// phase) and report the shape's own figures as metrics: Mops/s, and
// ns/thread-op, the time one thread spends per operation.

// benchPhase is the length of each shape benchmark's timed phase.
const benchPhase = 200 * time.Millisecond

// benchProviders are every built-in allocator but the bulk-only ones.
func benchProviders() []Provider {
	var out []Provider
	for _, pv := range Providers() {
		if !pv.BulkOnly {
			out = append(out, pv)
		}
	}
	return out
}

func BenchmarkPair(b *testing.B) {
	for _, size := range PairSizes() {
		for _, pv := range benchProviders() {
			b.Run(fmt.Sprintf("size=%d/alloc=%s", size, pv.Name), func(b *testing.B) {
				pool, err := pv.Open()
				if err != nil {
					b.Fatal(err)
				}
				a := pool.Worker()
				var p unsafe.Pointer
				for b.Loop() {
					p = a.Alloc(size)
					touch(p, size)
					a.Free(p)
				}
				pool.Done(a)
				if err := pool.Close(); err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}

func benchShape(b *testing.B, name string, threads int) {
	var w Workload
	for _, x := range Workloads() {
		if x.Name == name {
			w = x
		}
	}
	if w.run == nil {
		b.Fatalf("no workload %q", name)
	}
	for _, pv := range benchProviders() {
		b.Run(fmt.Sprintf("alloc=%s/threads=%d", pv.Name, threads), func(b *testing.B) {
			p := Quick()
			p.Duration = benchPhase
			var ops uint64
			var secs float64
			for b.Loop() {
				r := Run(pv, w, threads, &p)
				if r.Error != "" {
					b.Fatal(r.Error)
				}
				ops += r.Ops
				secs += r.Seconds
			}
			b.ReportMetric(float64(ops)/secs/1e6, "Mops/s")
			b.ReportMetric(secs*1e9*float64(threads)/float64(ops), "ns/thread-op")
		})
	}
}

func BenchmarkLarson(b *testing.B)      { benchShape(b, "larson", 2) }
func BenchmarkXmalloc(b *testing.B)     { benchShape(b, "xmalloc", 1) }
func BenchmarkMstress(b *testing.B)     { benchShape(b, "mstress", 2) }
func BenchmarkAllocTest(b *testing.B)   { benchShape(b, "alloc-test", 2) }
func BenchmarkGlibcSimple(b *testing.B) { benchShape(b, "glibc-simple", 1) }
func BenchmarkGlibcThread(b *testing.B) { benchShape(b, "glibc-thread", 2) }
