package bench

import (
	"cmp"
	"fmt"
	"slices"
	"unsafe"
)

// Unit says how a workload's result reads.
type Unit string

const (
	// UnitOps: operations per second, higher is better.
	UnitOps Unit = "Mops/s"
	// UnitPair: nanoseconds per alloc+free pair and thread, lower is better.
	UnitPair Unit = "ns/pair"
	// UnitScaling: wall time relative to the same allocator's 1-thread
	// run with the same work per thread; 1.00 is perfect scaling, lower
	// is better.
	UnitScaling Unit = "t/t1"
)

// Workload is one benchmark shape.
type Workload struct {
	Name string
	Doc  string
	Unit Unit
	// Bulk: the shape frees in batches, so bulk-only allocators (Go
	// arenas) can run it.
	Bulk bool
	// Threads, when not nil, overrides the thread counts asked for:
	// larson-big runs at one count only.
	Threads func(p *Params) []int
	run     func(pool Pool, threads int, p *Params) measurement
}

// PairSizes returns the object sizes of the pair microbenchmark: the
// range BENCHMARKS.md's Cache-vs-make targets are set over.
func PairSizes() []int { return []int{16, 64, 256, 1024} }

// Workloads lists every shape, in report order.
func Workloads() []Workload {
	ws := []Workload{
		{Name: "larson", Unit: UnitOps, run: larsonSmall,
			Doc: "server shape: each thread replaces random objects of a small live set; every round a new thread inherits the objects"},
		{Name: "larson-big", Unit: UnitOps, run: larsonBig,
			Threads: func(p *Params) []int { return []int{p.LarsonBigThreads} },
			Doc:     "larson with a ~1 GiB live set: what a GC must mark"},
		{Name: "xmalloc", Unit: UnitOps, run: xmalloc,
			Doc: "producers allocate, consumers free (cross-thread frees); threads = producer/consumer pairs"},
		{Name: "cache-scratch", Unit: UnitScaling, run: cacheScratch,
			Doc: "passive false sharing: each thread first frees an object the main thread allocated next to the others'"},
		{Name: "cache-thrash", Unit: UnitScaling, run: cacheThrash,
			Doc: "active false sharing: threads allocate and write small objects at once"},
		{Name: "mstress", Unit: UnitOps, run: mstress,
			Doc: "random sizes and lifetimes, objects swapped between threads through a shared array"},
		{Name: "alloc-test", Unit: UnitOps, run: allocTest,
			Doc: "working set of 8 B-1 KiB objects, small sizes far more likely"},
		{Name: "glibc-simple", Unit: UnitOps, Bulk: true, run: glibcSimple,
			Doc: "allocate a batch, free it all, cycling 16-256 B"},
		{Name: "glibc-thread", Unit: UnitOps, run: glibcThread,
			Doc: "glibc's bench-malloc-thread: 1024-object working set of 4 B-32 KiB per thread"},
	}
	for _, size := range PairSizes() {
		ws = append(ws, Workload{
			Name: fmt.Sprintf("pair-%d", size), Unit: UnitPair, run: pair(size),
			Doc: fmt.Sprintf("alloc+free of %d B, back to back", size),
		})
	}
	return ws
}

// Result is one run: one workload, allocator and thread count.
type Result struct {
	Workload string  `json:"workload"`
	Alloc    string  `json:"alloc"`
	Threads  int     `json:"threads"`
	Ops      uint64  `json:"ops"`
	Seconds  float64 `json:"seconds"`
	// GCCPUSeconds and GCCycles: the Go GC's work during the timed phase
	// (Go-side allocators only).
	GCCPUSeconds float64 `json:"gc_cpu_seconds,omitempty"`
	GCCycles     uint64  `json:"gc_cycles,omitempty"`
	// MallocLib: the malloc library the C driver found mapped (native
	// allocators only), proof that LD_PRELOAD took.
	MallocLib string `json:"malloc_lib,omitempty"`
	Error     string `json:"error,omitempty"`
	// Runs is how many runs this result is the median of (Median), and
	// SpreadPct their throughputs' range as a percentage of the median's:
	// a noise gauge.
	Runs      int     `json:"runs,omitempty"`
	SpreadPct float64 `json:"spread_pct,omitempty"`
}

// Median returns the run of rs with the median throughput (the lower
// middle one for an even count), with Runs and SpreadPct set; the first
// failed run if any failed.
func Median(rs []Result) Result {
	for _, r := range rs {
		if r.Error != "" {
			return r
		}
	}
	sorted := slices.Clone(rs)
	slices.SortFunc(sorted, func(a, b Result) int { return cmp.Compare(a.OpsPerSec(), b.OpsPerSec()) })
	m := sorted[(len(sorted)-1)/2]
	m.Runs = len(rs)
	if med := m.OpsPerSec(); med > 0 {
		m.SpreadPct = 100 * (sorted[len(sorted)-1].OpsPerSec() - sorted[0].OpsPerSec()) / med
	}
	return m
}

// OpsPerSec is the run's throughput.
func (r Result) OpsPerSec() float64 {
	if r.Seconds <= 0 {
		return 0
	}
	return float64(r.Ops) / r.Seconds
}

// Run runs workload w with provider pv on threads workers.
func Run(pv Provider, w Workload, threads int, p *Params) (res Result) {
	res = Result{Workload: w.Name, Alloc: pv.Name, Threads: threads}
	if err := p.Validate(); err != nil {
		res.Error = err.Error()
		return res
	}
	settle()
	pool, err := pv.Open()
	if err != nil {
		res.Error = err.Error()
		return res
	}
	m := w.run(pool, threads, p)
	if err := pool.Close(); err != nil {
		res.Error = err.Error()
	}
	res.Ops, res.Seconds = m.ops, m.elapsed.Seconds()
	res.GCCPUSeconds, res.GCCycles = m.gcCPU, m.gcCycles
	return res
}

// fill allocates n objects with sizes from size, touching each: a live
// set built before the clock starts.
func fill(a Allocator, n int, size func() int) []unsafe.Pointer {
	slots := make([]unsafe.Pointer, n)
	for i := range slots {
		sz := size()
		slots[i] = a.Alloc(sz)
		touch(slots[i], sz)
	}
	return slots
}

// freeAll frees every non-nil slot.
func freeAll(a Allocator, slots []unsafe.Pointer) {
	for i, p := range slots {
		if p != nil {
			a.Free(p)
			slots[i] = nil
		}
	}
}

// replace is the working-set step shared by larson, alloc-test and
// glibc-thread: free a random object and allocate one in its place.
func replace(a Allocator, slots []unsafe.Pointer, r *rng, size func() int) {
	i := r.intn(len(slots))
	a.Free(slots[i])
	sz := size()
	slots[i] = a.Alloc(sz)
	touch(slots[i], sz)
}

// untilStopped runs step in blocks of checkEvery until the phase stops and
// returns how many steps ran.
func untilStopped(ph *phase, step func()) uint64 {
	var n uint64
	for !ph.stopped() {
		for range checkEvery {
			step()
		}
		n += checkEvery
	}
	return n
}
