package container

import (
	"flag"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"testing"
	"time"

	"github.com/offheap/offheap/arena"
)

// benchN is the number of entries the map benchmarks hold:
// -container.n=10000000, or CONTAINER_BENCH_N, else 1 M (at 10 M the
// Go-map side needs about 2 GiB of Go heap).
var benchN = flag.Int("container.n", envInt("CONTAINER_BENCH_N", 1<<20), "entries in the container benchmarks' maps")

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// The benchmark data: 16-byte keys and 32-byte values, as a cache or
// index of short records might hold.
const (
	benchKeyLen = 16
	benchValLen = 32
)

// benchKeys returns n distinct keys as one flat array: nothing per key
// for the GC to track. The Go map is given string(key) conversions, which
// copy the key when storing it (the map owns its keys, as BytesMap does)
// and not when looking it up.
func benchKeys(n int) []byte {
	flat := make([]byte, 0, n*benchKeyLen)
	for i := range n {
		flat = fmt.Appendf(flat, "key:%012d", i)
	}
	return flat
}

func bkey(flat []byte, i int) []byte { return flat[i*benchKeyLen : (i+1)*benchKeyLen] }

func benchVal(i int) []byte {
	v := make([]byte, benchValLen)
	for j := range v {
		v[j] = byte(i + j)
	}
	return v
}

func newBenchHeap(b *testing.B) *arena.Heap {
	h, err := arena.NewHeap(arena.Config{Reserve: 64 << 30, ScavengeDelay: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = h.Close() })
	return h
}

// latHist is a latency histogram with 8 buckets per power of two (12 %
// resolution), for percentiles without keeping every sample.
type latHist struct {
	counts [64 * 8]uint64
	n      uint64
	max    time.Duration
}

func (l *latHist) add(d time.Duration) {
	ns := uint64(max(d, 1))
	e := bits.Len64(ns) - 1 // 2^e <= ns
	sub := uint64(0)
	if e >= 3 {
		sub = ns >> (e - 3) & 7
	}
	l.counts[e*8+int(sub)]++
	l.n++
	l.max = max(l.max, d)
}

// quantile returns the upper bound of the bucket holding quantile q.
func (l *latHist) quantile(q float64) time.Duration {
	want := uint64(q * float64(l.n))
	var seen uint64
	for i, c := range l.counts {
		if seen += c; seen > want {
			e, sub := i/8, uint64(i%8)
			if e < 3 {
				return time.Duration(uint64(1) << (e + 1))
			}
			return time.Duration((8 + sub + 1) << (e - 3))
		}
	}
	return l.max
}

// setTimes inserts n entries with set, timing each call, and returns the
// mean and the histogram.
func setTimes(n int, set func(i int)) (mean time.Duration, hist *latHist) {
	hist = new(latHist)
	start := time.Now()
	last := start
	for i := range n {
		set(i)
		now := time.Now()
		hist.add(now.Sub(last))
		last = now
	}
	return time.Since(start) / time.Duration(n), hist
}

// reportLatency reports the mean and the tail of single Sets.
func reportLatency(b *testing.B, mean time.Duration, worst *latHist) {
	b.ReportMetric(float64(mean.Nanoseconds()), "ns/set")
	b.ReportMetric(float64(worst.quantile(0.999).Nanoseconds()), "p99.9-ns/set")
	b.ReportMetric(float64(worst.quantile(0.9999).Nanoseconds()), "p99.99-ns/set")
	b.ReportMetric(float64(worst.max.Nanoseconds()), "max-ns/set")
}

// BenchmarkSetGrow fills an empty map with N entries, timing each Set
// (the timer's own ~20-40 ns included, for both maps alike): ns/set is the
// mean, max-ns/set the longest single Set, which for the Go map is an
// insert that grew a table or assisted the GC and for BytesMap the worst
// bounded resize step (or a page fault); p99.9 and p99.99 are upper
// bounds within 12 %. Each iteration is one fill; the figures are the
// last fill's, the maximum the worst of all. On a loaded machine the
// tail measures the scheduler.
func BenchmarkSetGrow(b *testing.B) {
	n := *benchN
	flat := benchKeys(n)
	val := benchVal(1)
	b.Run("offheap", func(b *testing.B) {
		h := newBenchHeap(b)
		var mean time.Duration
		var hist *latHist
		var worst time.Duration
		for b.Loop() {
			m, err := NewBytesMap(h, 0)
			if err != nil {
				b.Fatal(err)
			}
			mean, hist = setTimes(n, func(i int) {
				if err := m.Set(bkey(flat, i), val); err != nil {
					b.Fatal(err)
				}
			})
			worst = max(worst, hist.max)
			b.StopTimer()
			_ = m.Close()
			b.StartTimer()
		}
		hist.max = worst
		reportLatency(b, mean, hist)
	})
	b.Run("gomap", func(b *testing.B) {
		var mean time.Duration
		var hist *latHist
		var worst time.Duration
		for b.Loop() {
			m := map[string][]byte{}
			mean, hist = setTimes(n, func(i int) {
				m[string(bkey(flat, i))] = append([]byte(nil), val...) // the map must own a copy, as BytesMap does
			})
			worst = max(worst, hist.max)
			runtime.KeepAlive(m)
		}
		hist.max = worst
		reportLatency(b, mean, hist)
	})
}

// benchOrder is a random permutation of 0..n-1, so lookups miss the cache
// as a real index's would.
func benchOrder(n int) []int32 {
	p := make([]int32, n)
	for i := range p {
		p[i] = int32(i)
	}
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(n, func(i, j int) { p[i], p[j] = p[j], p[i] })
	return p
}

// BenchmarkGet looks up random keys of a map of N entries (each op one
// Get, copying the value out into a reused buffer).
func BenchmarkGet(b *testing.B) {
	n := *benchN
	flat := benchKeys(n)
	order := benchOrder(n)
	b.Run("offheap", func(b *testing.B) {
		h := newBenchHeap(b)
		m, _ := NewBytesMap(h, 0)
		for i := range n {
			if err := m.Set(bkey(flat, i), benchVal(i)); err != nil {
				b.Fatal(err)
			}
		}
		var buf []byte
		i := 0
		for b.Loop() {
			k := int(order[i%n])
			var ok bool
			buf, ok = m.Get(buf[:0], bkey(flat, k))
			if !ok {
				b.Fatal("missing")
			}
			i++
		}
	})
	b.Run("gomap", func(b *testing.B) {
		m := make(map[string][]byte)
		for i := range n {
			m[string(bkey(flat, i))] = benchVal(i)
		}
		var buf []byte
		i := 0
		for b.Loop() {
			k := int(order[i%n])
			v, ok := m[string(bkey(flat, k))]
			if !ok {
				b.Fatal("missing")
			}
			buf = append(buf[:0], v...)
			i++
		}
	})
}

// BenchmarkDelete deletes N entries in random order from a full map and
// reports ns/delete (each iteration refills untimed and empties the map).
func BenchmarkDelete(b *testing.B) {
	n := *benchN
	flat := benchKeys(n)
	order := benchOrder(n)
	val := benchVal(1)
	b.Run("offheap", func(b *testing.B) {
		h := newBenchHeap(b)
		var took time.Duration
		for b.Loop() {
			b.StopTimer()
			m, _ := NewBytesMap(h, 0)
			for i := range n {
				_ = m.Set(bkey(flat, i), val)
			}
			b.StartTimer()
			t0 := time.Now()
			for _, k := range order {
				if !m.Delete(bkey(flat, int(k))) {
					b.Fatal("missing")
				}
			}
			took = time.Since(t0)
			_ = m.Close()
		}
		b.ReportMetric(float64(took.Nanoseconds())/float64(n), "ns/delete")
	})
	b.Run("gomap", func(b *testing.B) {
		var took time.Duration
		for b.Loop() {
			b.StopTimer()
			m := make(map[string][]byte)
			for i := range n {
				m[string(bkey(flat, i))] = append([]byte(nil), val...)
			}
			b.StartTimer()
			t0 := time.Now()
			for _, k := range order {
				delete(m, string(bkey(flat, int(k))))
			}
			took = time.Since(t0)
		}
		b.ReportMetric(float64(took.Nanoseconds())/float64(n), "ns/delete")
	})
}

// gcCPU reads the GC's total CPU time so far.
func gcCPU() float64 {
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(s)
	return s[0].Value.Float64()
}

// footprintGCs is how many forced GCs BenchmarkFootprint times with the
// map full: each one marks whatever the Go heap holds.
const footprintGCs = 10

// BenchmarkFootprint fills a map with N entries and reports what it
// costs to hold them: bytes per entry off-heap (the Heap's HeapInuse and
// Committed) and on the Go heap (HeapInuse growth), the GC CPU seconds the
// fill cost, and the GC CPU seconds of one forced GC cycle with the map
// full. One iteration is one fill.
func BenchmarkFootprint(b *testing.B) {
	n := *benchN
	flat := benchKeys(n)
	val := benchVal(1)
	var ms0, ms1 runtime.MemStats
	report := func(b *testing.B, fillGC float64, offInuse, offCommitted uint64) {
		// With the map still live: what does a GC cycle cost now?
		defer debug.SetGCPercent(debug.SetGCPercent(-1))
		c0 := gcCPU()
		for range footprintGCs {
			runtime.GC()
		}
		cycle := (gcCPU() - c0) / footprintGCs
		b.ReportMetric(float64(ms1.HeapInuse-min(ms1.HeapInuse, ms0.HeapInuse))/float64(n), "go-heap-B/entry")
		b.ReportMetric(float64(offInuse)/float64(n), "offheap-inuse-B/entry")
		b.ReportMetric(float64(offCommitted)/float64(n), "offheap-committed-B/entry")
		b.ReportMetric(fillGC, "gc-cpu-s/fill")
		b.ReportMetric(cycle*1e3, "gc-cpu-ms/cycle")
	}
	b.Run("offheap", func(b *testing.B) {
		for b.Loop() {
			h := newBenchHeap(b)
			runtime.GC()
			runtime.ReadMemStats(&ms0)
			c0 := gcCPU()
			m, _ := NewBytesMap(h, 0)
			for i := range n {
				if err := m.Set(bkey(flat, i), val); err != nil {
					b.Fatal(err)
				}
			}
			fillGC := gcCPU() - c0
			runtime.GC()
			runtime.ReadMemStats(&ms1)
			st := h.Stats()
			b.StopTimer()
			report(b, fillGC, st.HeapInuse, st.Committed)
			_ = m.Close()
			_ = h.Close()
			b.StartTimer()
		}
	})
	b.Run("gomap", func(b *testing.B) {
		for b.Loop() {
			runtime.GC()
			runtime.ReadMemStats(&ms0)
			c0 := gcCPU()
			m := map[string][]byte{}
			for i := range n {
				m[string(bkey(flat, i))] = append([]byte(nil), val...)
			}
			fillGC := gcCPU() - c0
			runtime.GC()
			runtime.ReadMemStats(&ms1)
			b.StopTimer()
			report(b, fillGC, 0, 0)
			runtime.KeepAlive(m)
			b.StartTimer()
		}
	})
}

// BenchmarkMapUint64 compares Map[uint64, uint64] with map[uint64]uint64
// at N entries: set-grow fills an empty map (ns per Set), get looks up
// random keys (ns per Get).
func BenchmarkMapUint64(b *testing.B) {
	n := *benchN
	order := benchOrder(n)
	b.Run("offheap/set-grow", func(b *testing.B) {
		h := newBenchHeap(b)
		var took time.Duration
		for b.Loop() {
			m, _ := NewMap[uint64, uint64](h, 0)
			t0 := time.Now()
			for i := range uint64(n) {
				if err := m.Set(i, i); err != nil {
					b.Fatal(err)
				}
			}
			took = time.Since(t0)
			b.StopTimer()
			_ = m.Close()
			b.StartTimer()
		}
		b.ReportMetric(float64(took.Nanoseconds())/float64(n), "ns/set")
	})
	b.Run("gomap/set-grow", func(b *testing.B) {
		var took time.Duration
		for b.Loop() {
			m := map[uint64]uint64{}
			t0 := time.Now()
			for i := range uint64(n) {
				m[i] = i
			}
			took = time.Since(t0)
			runtime.KeepAlive(m)
		}
		b.ReportMetric(float64(took.Nanoseconds())/float64(n), "ns/set")
	})
	b.Run("offheap/get", func(b *testing.B) {
		h := newBenchHeap(b)
		m, _ := NewMap[uint64, uint64](h, 0)
		for i := range uint64(n) {
			_ = m.Set(i, i)
		}
		i := 0
		for b.Loop() {
			k := uint64(order[i%n])
			if v, ok := m.Get(k); !ok || v != k {
				b.Fatal("missing")
			}
			i++
		}
	})
	b.Run("gomap/get", func(b *testing.B) {
		m := map[uint64]uint64{}
		for i := range uint64(n) {
			m[i] = i
		}
		i := 0
		for b.Loop() {
			k := uint64(order[i%n])
			if v, ok := m[k]; !ok || v != k {
				b.Fatal("missing")
			}
			i++
		}
	})
}
