package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/offheap/offheap/arena"
	"github.com/offheap/offheap/internal/heapview"
	"github.com/offheap/offheap/trace"
)

// touchStride is how far apart the workloads write into each object they
// allocate: once per kernel page, so the memory is really used (resident)
// without the cost of filling it.
const touchStride = 4096

// workload is a built-in workload.
type workload struct {
	name, about string
	// run drives the heap until w.stopped(); it returns the phases it
	// snapshotted itself (none: the runner takes one at the end) and a
	// cleanup that frees what the workload still holds.
	run func(w *worker) (phases []Phase, cleanup func(), err error)
	// duration is the default -duration, where the default run length
	// (defaultDuration) does not suit the workload; 0 for that default.
	duration time.Duration
	// lateClock: the workload starts the run's clock itself
	// (worker.startClock) once its set-up is done, so that -duration
	// measures what comes after the set-up (massdelete: the churn after
	// the fill and the delete). Until then w.stopped() is false unless -ops
	// or a failure stopped the run.
	lateClock bool
}

var workloads = map[string]workload{}

func register(w workload) { workloads[w.name] = w }

func workloadNames() string {
	var names []string
	for n := range workloads {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// worker is a workload run's shared state: the heap, the limits of the
// run, and the counters the report shows.
type worker struct {
	h          *arena.Heap
	duration   time.Duration
	goroutines int
	maxAllocs  uint64          // stop after this many allocations; 0: no bound
	rec        *trace.Recorder // nil unless recording
	fill       uint64          // -fill: the bytes massdelete allocates before its delete
	turnover   float64         // -turnover: the percent of its live set massdelete replaces a second; 0: unpaced

	begun time.Time // when the run began, set-up included; read by the runner only
	// clockStart is when the run's clock started (unix nanoseconds), 0
	// before: atomic because the progress bar reads it while a lateClock
	// workload sets it.
	clockStart atomic.Int64
	stop       atomic.Bool
	// timer ends the run -duration after the clock started; nil before.
	// Set by startClock, stopped by stopClock, both on the goroutine that
	// runs the workload.
	timer *time.Timer

	allocs, frees, allocBytes, oom atomic.Uint64
	scavenged                      uint64 // what a workload's Scavenge call returned

	// What massdelete measured, for the report; set by the workload before
	// it returns.
	curve []CurveSample
	churn *ChurnSummary

	errOnce sync.Once
	err     error
}

// newWorker returns a run's state; unless late, the run's clock starts
// now.
func newWorker(h *arena.Heap, d time.Duration, goroutines int, maxAllocs uint64, rec *trace.Recorder, late bool) *worker {
	w := &worker{h: h, duration: d, goroutines: goroutines, maxAllocs: maxAllocs, rec: rec, begun: time.Now()}
	if !late {
		w.startClock()
	}
	return w
}

// startClock starts the run's clock: the run stops -duration from now.
// Called once, on the goroutine that runs the workload.
func (w *worker) startClock() {
	w.clockStart.Store(time.Now().UnixNano())
	w.timer = time.AfterFunc(w.duration, func() { w.stop.Store(true) })
}

// stopClock stops the run's timer, if it was started.
func (w *worker) stopClock() {
	if w.timer != nil {
		w.timer.Stop()
	}
}

// stopped reports whether the run is over: time is up, the allocation
// bound is reached, or a worker failed.
func (w *worker) stopped() bool { return w.stop.Load() }

// fail records the first unexpected error and stops the run.
func (w *worker) fail(err error) {
	w.errOnce.Do(func() { w.err = err })
	w.stop.Store(true)
}

// elapsed is the fraction of the run's time gone, for the progress bar.
func (w *worker) elapsed() float64 {
	start := w.clockStart.Load()
	if start == 0 {
		return 0 // still setting up
	}
	return min(float64(time.Since(time.Unix(0, start)))/float64(w.duration), 1)
}

// wrap returns the allocator the workload should use for a: a itself, or a
// recording front end.
func (w *worker) wrap(a trace.AllocFreer) trace.AllocFreer {
	if w.rec == nil {
		return a
	}
	return w.rec.Wrap(a)
}

// alloc allocates size bytes through a and touches them. Out-of-memory
// failures are counted and return nil; other errors stop the run.
func (w *worker) alloc(a trace.AllocFreer, size int) unsafe.Pointer {
	p, err := a.Alloc(size)
	if err != nil {
		if errors.Is(err, arena.ErrOutOfMemory) {
			w.oom.Add(1)
		} else {
			w.fail(fmt.Errorf("alloc(%d): %w", size, err))
		}
		return nil
	}
	touch(p, size)
	w.allocBytes.Add(uint64(size))
	if n := w.allocs.Add(1); w.maxAllocs > 0 && n >= w.maxAllocs {
		w.stop.Store(true)
	}
	return p
}

// free frees p through a; an error stops the run.
func (w *worker) free(a trace.AllocFreer, p unsafe.Pointer) {
	if err := a.Free(p); err != nil {
		w.fail(fmt.Errorf("free: %w", err))
		return
	}
	w.frees.Add(1)
}

// rng returns a goroutine's random source: seeded by its index so runs
// draw the same sizes.
func rng(i int) *rand.Rand { return rand.New(rand.NewPCG(uint64(i), 0x0ff4ea9)) }

// between returns a size in [lo, hi].
func between(r *rand.Rand, lo, hi int) int { return lo + r.IntN(hi-lo+1) }

// retained is a fixed-size set of live objects; putting a new one in
// evicts a random old one, so the heap keeps a scattered live set, as a
// cache does, instead of freeing in allocation order.
type retained struct {
	objs []unsafe.Pointer
	n    int
}

func newRetained(n int) *retained { return &retained{objs: make([]unsafe.Pointer, n)} }

// put stores p and returns the object it evicts, or nil.
func (r *retained) put(rnd *rand.Rand, p unsafe.Pointer) unsafe.Pointer {
	if r.n < len(r.objs) {
		r.objs[r.n] = p
		r.n++
		return nil
	}
	i := rnd.IntN(len(r.objs))
	old := r.objs[i]
	r.objs[i] = p
	return old
}

// drain frees every object left through f.
func (r *retained) drain(f trace.AllocFreer) {
	for _, p := range r.objs[:r.n] {
		f.Free(p)
	}
	r.n = 0
}

// snapshot takes a labelled snapshot of the heap.
func (w *worker) snapshot(label string) Phase {
	return Phase{Label: label, Snapshot: snapshotOf(w.h)}
}

// snapshotOf takes h's snapshot.
func snapshotOf(h *arena.Heap) heapview.Snapshot { return heapview.Take(h) }
