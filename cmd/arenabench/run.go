package main

import (
	"fmt"
	"io"
	"os"

	"github.com/offheap/offheap/bench"
)

// threadsFor is the thread counts workload w runs at.
func (c *config) threadsFor(w bench.Workload) []int {
	if w.Threads != nil {
		return w.Threads(&c.params)
	}
	return c.threads
}

// runAll runs every workload on every allocator, workload by workload so
// the allocators of one row run close together in time, and returns the
// results and the notes (allocators skipped and why).
func runAll(cfg *config, progress io.Writer) ([]bench.Result, []string) {
	inProcess := map[string]bench.Provider{}
	for _, pv := range bench.Providers() {
		inProcess[pv.Name] = pv
	}
	var notes []string
	skip := map[string]bool{}
	for _, a := range cfg.allocs {
		if why := unavailable(cfg, a, inProcess); why != "" {
			note := fmt.Sprintf("skipped %s: %s", a, why)
			notes = append(notes, note)
			fmt.Fprintln(progress, "arenabench:", note)
			skip[a] = true
		}
	}
	var results []bench.Result
	for _, w := range cfg.workloads {
		threads := cfg.threadsFor(w)
		for _, a := range cfg.allocs {
			if skip[a] {
				continue
			}
			pv, ok := inProcess[a]
			if (ok && pv.BulkOnly || a == bench.NameGoArena) && !w.Bulk {
				continue // go-arena frees only in bulk
			}
			// runs[i] collects thread count i's repeats.
			runs := make([][]bench.Result, len(threads))
			for range cfg.count {
				var rs []bench.Result
				switch {
				case ok:
					for _, t := range threads {
						rs = append(rs, bench.Run(pv, w, t, &cfg.params))
					}
				case a == bench.NameGoArena:
					rs = runArenas(cfg, w, threads)
				default:
					rs = runNative(cfg, a, w, threads)
				}
				for i, r := range rs {
					fmt.Fprintln(progress, "arenabench:", progressLine(r))
					runs[i] = append(runs[i], r)
				}
			}
			for _, rs := range runs {
				results = append(results, bench.Median(rs))
			}
		}
	}
	return results, notes
}

// unavailable says why allocator a cannot run in this configuration, or
// "" if it can.
func unavailable(cfg *config, a string, inProcess map[string]bench.Provider) string {
	switch {
	case inProcess[a].Name != "":
		return ""
	case a == bench.NameCgo:
		return "this binary was built with CGO_ENABLED=0"
	case a == bench.NameGoArena:
		if cfg.arenas == "" {
			return "no GOEXPERIMENT=arenas build given (-arenas)"
		}
		if _, err := os.Stat(cfg.arenas); err != nil {
			return err.Error()
		}
		return ""
	}
	// a native allocator
	if cfg.shapes == "" {
		return "no C driver given (-shapes)"
	}
	if _, err := os.Stat(cfg.shapes); err != nil {
		return err.Error()
	}
	if a == bench.NameGlibc {
		return ""
	}
	lib, ok := cfg.preload[a]
	if !ok {
		return "no library given (-preload " + a + "=PATH)"
	}
	if _, err := os.Stat(lib); err != nil {
		return err.Error()
	}
	return ""
}

func progressLine(r bench.Result) string {
	s := fmt.Sprintf("%s/%s/%d: ", r.Workload, r.Alloc, r.Threads)
	if r.Error != "" {
		return s + "error: " + r.Error
	}
	s += fmt.Sprintf("%.4g ops/s (%d ops in %.3fs)", r.OpsPerSec(), r.Ops, r.Seconds)
	if r.GCCycles > 0 {
		s += fmt.Sprintf(", GC %.3f CPU s, %d cycles", r.GCCPUSeconds, r.GCCycles)
	}
	return s
}
