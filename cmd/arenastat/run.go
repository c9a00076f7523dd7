package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/offheap/offheap/arena"
	"github.com/offheap/offheap/trace"
)

const (
	defaultWorkload   = "mixed"
	defaultDuration   = 3 * time.Second
	defaultGoroutines = 4
	// maxGoroutines bounds -goroutines: each one holds a Cache.
	maxGoroutines = 1024
	// maxDuration bounds -duration, to catch a mistyped unit.
	maxDuration = 24 * time.Hour
	// maxFill bounds -fill, to catch a mistyped unit before it meets the
	// memory limit or the kernel's OOM killer.
	maxFill = 1 << 40
)

// runConfig is what a workload run needs.
type runConfig struct {
	workload   string
	duration   time.Duration
	goroutines int
	memLimit   int64
	limitNote  string // what memLimit is and where it came from
	maxAllocs  uint64
	record     string  // trace file; "" for none
	fill       uint64  // massdelete: the bytes to allocate before the delete
	turnover   float64 // massdelete: percent of the live set replaced a second; 0: unpaced
}

func (c *runConfig) check() error {
	if _, ok := workloads[c.workload]; !ok {
		return fmt.Errorf("unknown workload %q (valid: %s)", c.workload, workloadNames())
	}
	if c.duration <= 0 || c.duration > maxDuration {
		return fmt.Errorf("-duration %s out of range (0, %s]", c.duration, maxDuration)
	}
	if c.goroutines < 1 || c.goroutines > maxGoroutines {
		return fmt.Errorf("-goroutines %d out of range [1, %d]", c.goroutines, maxGoroutines)
	}
	if c.fill == 0 || c.fill > maxFill {
		return fmt.Errorf("-fill %d out of range (0, %d]", c.fill, uint64(maxFill))
	}
	if !(c.turnover >= 0 && c.turnover <= maxTurnover) { // NaN fails too
		return fmt.Errorf("-turnover %g out of range [0, %d]", c.turnover, maxTurnover)
	}
	return nil
}

func runCmd(args []string, out *output) error {
	fs := newFlagSet("run")
	cfg := runConfig{}
	fs.StringVar(&cfg.workload, "workload", defaultWorkload, "workload: "+workloadNames())
	fs.DurationVar(&cfg.duration, "duration", defaultDuration,
		fmt.Sprintf("how long to run (massdelete: how long to churn after the delete, default %s)", massDuration))
	fs.IntVar(&cfg.goroutines, "goroutines", defaultGoroutines, "worker goroutines, each with an arena.Cache")
	// A workload stays within its own bounds (and counts out-of-memory
	// failures rather than stopping at one): no limit unless asked.
	fs.addMemLimit(memLimitNone)
	fs.Uint64Var(&cfg.maxAllocs, "ops", 0, "stop after this many allocations (0: run for -duration)")
	fs.StringVar(&cfg.record, "record", "", "write the run's allocation trace to this file")
	fill := bytesFlag(massDefaultFill)
	fs.Float64Var(&cfg.turnover, "turnover", 0, "massdelete: `PERCENT` of the live objects replaced a second during the churn (0: as fast as the goroutines go)")
	fs.Var(&fill, "fill", "massdelete: `BYTES` of 64-512 B objects to allocate before deleting 90 % of them (256MiB, 1GiB)")
	fs.addFormat()
	pos, err := fs.parse(args, out)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	cfg.memLimit, cfg.limitNote = fs.memoryLimit()
	cfg.fill = uint64(fill)
	// A workload with its own default run length gets it unless -duration
	// was given.
	if wl, ok := workloads[cfg.workload]; ok && wl.duration > 0 && !flagGiven(fs.FlagSet, "duration") {
		cfg.duration = wl.duration
	}
	if err := cfg.check(); err != nil {
		return usageError{err}
	}
	rep, err := runWorkload(cfg, out, nil)
	if err != nil {
		return err
	}
	return rep.write(out.stdout, fs.format)
}

// runWorkload runs a workload on a fresh heap and reports on it. inspect,
// if not nil, sees the heap after the run, before the workload frees what
// it holds.
func runWorkload(cfg runConfig, out *output, inspect func(h *arena.Heap)) (*Report, error) {
	wl := workloads[cfg.workload]
	h, err := arena.NewHeap(arena.Config{MemoryLimit: cfg.memLimit})
	if err != nil {
		return nil, err
	}
	defer h.Close()

	var rec *trace.Recorder
	var traceFile *os.File
	if cfg.record != "" {
		if traceFile, err = os.Create(cfg.record); err != nil {
			return nil, err
		}
		defer traceFile.Close()
		rec = trace.NewRecorder(traceFile, h)
	}

	w := newWorker(h, cfg.duration, cfg.goroutines, cfg.maxAllocs, rec, wl.lateClock)
	w.fill, w.turnover = cfg.fill, cfg.turnover
	defer w.stopClock()
	stop := func() {}
	if out.terminal {
		stop = startProgress(out.stderr, cfg.workload, w.elapsed, func() string {
			return fmt.Sprintf("%d allocs", w.allocs.Load())
		})
	}
	phases, cleanup, err := wl.run(w)
	took := time.Since(w.begun)
	stop()
	if err == nil {
		err = w.err
	}
	if err != nil {
		return nil, err
	}
	if len(phases) == 0 {
		phases = []Phase{w.snapshot("end of run")}
	}
	if rec != nil {
		if err := rec.Flush(); err != nil {
			return nil, fmt.Errorf("writing trace: %w", err)
		}
		if err := traceFile.Close(); err != nil {
			return nil, fmt.Errorf("writing trace: %w", err)
		}
	}
	if inspect != nil {
		inspect(h)
	}
	cleanup()

	rep := &Report{
		Title: fmt.Sprintf("offheap: workload %s (%s)", cfg.workload, wl.about),
		Summary: &Summary{
			Workload: cfg.workload, Duration: took, Goroutines: cfg.goroutines,
			Allocs: w.allocs.Load(), Frees: w.frees.Load(), AllocBytes: w.allocBytes.Load(),
			OOM: w.oom.Load(), Scavenged: w.scavenged, MemoryLimit: cfg.limitNote,
			Churn: w.churn,
		},
		Curve:  w.curve,
		Phases: phases,
	}
	return rep, nil
}

// flagGiven reports whether the flag name was given on the command line.
func flagGiven(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// bytesFlag is a byte count flag: plain or with a unit (parseBytes).
type bytesFlag uint64

func (b *bytesFlag) String() string { return fmt.Sprint(uint64(*b)) }

func (b *bytesFlag) Set(s string) error {
	n, err := parseBytes(s)
	if err != nil {
		return err
	}
	*b = bytesFlag(n)
	return nil
}
