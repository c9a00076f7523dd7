package bench

import (
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// checkEvery is how many operations a worker does between looks at the
// stop flag: rare enough that the atomic load is noise (a few ns per 256
// operations), often enough that workers stop within microseconds.
const checkEvery = 256

// phase times the measured part of a run. Each worker sets up untimed
// (fills its live set), calls begin, which waits until every worker is
// ready, works until stopped (or its fixed work is done), calls end with
// its operation count, and then tears down untimed. The clock runs from
// the moment all workers are released to the moment the last one calls
// end.
//
// Locking: stop, ops are atomics; ready and done are WaitGroups counted
// once per worker; start is closed once by run.
type phase struct {
	stop  atomic.Bool
	ops   atomic.Uint64
	ready sync.WaitGroup
	done  sync.WaitGroup
	start chan struct{}
}

func (ph *phase) begin() {
	ph.ready.Done()
	<-ph.start
}

func (ph *phase) end(ops uint64) {
	ph.ops.Add(ops)
	ph.done.Done()
}

// stopped reports whether the timed phase is over.
func (ph *phase) stopped() bool { return ph.stop.Load() }

// measurement is what one timed phase measured.
type measurement struct {
	ops      uint64
	elapsed  time.Duration
	gcCPU    float64 // GC CPU seconds during the phase (all Go runs)
	gcCycles uint64  // GC cycles completed during the phase
}

// runPhase starts workers goroutines running body(w, ph) and times them.
// With d > 0 it stops them after d; with d == 0 each does a fixed amount
// of work and the phase ends when all have ended. It returns once every
// body has returned (teardown included).
func runPhase(workers int, d time.Duration, body func(w int, ph *phase)) measurement {
	ph := &phase{start: make(chan struct{})}
	ph.ready.Add(workers)
	ph.done.Add(workers)
	var all sync.WaitGroup
	all.Add(workers)
	for w := range workers {
		go func() {
			defer all.Done()
			body(w, ph)
		}()
	}
	ph.ready.Wait()
	g0 := readGC()
	t0 := time.Now()
	close(ph.start)
	if d > 0 {
		time.Sleep(d)
		ph.stop.Store(true)
	}
	ph.done.Wait()
	elapsed := time.Since(t0)
	g1 := readGC()
	all.Wait()
	return measurement{
		ops: ph.ops.Load(), elapsed: elapsed,
		gcCPU: g1.cpu - g0.cpu, gcCycles: g1.cycles - g0.cycles,
	}
}

// The runtime/metrics the Go columns report: the GC's CPU time (mark
// assists, dedicated and idle workers, pauses) and its cycle count.
const (
	metricGCCPU    = "/cpu/classes/gc/total:cpu-seconds"
	metricGCCycles = "/gc/cycles/total:gc-cycles"
)

type gcFigures struct {
	cpu    float64
	cycles uint64
}

func readGC() gcFigures {
	s := []metrics.Sample{{Name: metricGCCPU}, {Name: metricGCCycles}}
	metrics.Read(s)
	var g gcFigures
	if s[0].Value.Kind() == metrics.KindFloat64 {
		g.cpu = s[0].Value.Float64()
	}
	if s[1].Value.Kind() == metrics.KindUint64 {
		g.cycles = s[1].Value.Uint64()
	}
	return g
}

// settle collects the previous run's garbage so it is not charged to the
// next run's GC figures or allocation rate.
func settle() { runtime.GC() }
