package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/offheap/offheap/bench"
)

// output is the -format json document.
type output struct {
	Environment map[string]string `json:"environment"`
	Params      bench.Params      `json:"params"`
	Allocs      []string          `json:"allocs"`
	Rows        []bench.Row       `json:"rows"`
	Results     []bench.Result    `json:"results"`
	Notes       []string          `json:"notes,omitempty"`
}

func report(cfg *config, results []bench.Result, notes []string, w io.Writer) error {
	var noisiest bench.Result
	for _, r := range results {
		if r.Error != "" {
			notes = append(notes, fmt.Sprintf("error: %s/%s/%d: %s", r.Workload, r.Alloc, r.Threads, r.Error))
		}
		if r.SpreadPct > noisiest.SpreadPct {
			noisiest = r
		}
	}
	if cfg.count > 1 && noisiest.Runs > 0 {
		notes = append(notes, fmt.Sprintf("medians of %d runs; widest spread %.0f%% of the median (%s/%s/%d)",
			cfg.count, noisiest.SpreadPct, noisiest.Workload, noisiest.Alloc, noisiest.Threads))
	}
	if cfg.plot != "" {
		if err := writePlot(cfg, results); err != nil {
			notes = append(notes, "no plot: "+err.Error())
		}
	}
	doc := func() output {
		env := environment()
		env["native_alloc"] = map[bool]string{false: "malloc", true: "calloc"}[cfg.nativeZero]
		return output{
			Environment: env, Params: cfg.params, Allocs: ranAllocs(cfg, results),
			Rows: bench.Rows(results, cfg.workloads), Results: results, Notes: notes,
		}
	}
	if cfg.jsonFile != "" {
		if err := writeJSON(cfg.jsonFile, doc()); err != nil {
			return err
		}
	}
	switch cfg.format {
	case "jsonl":
		enc := json.NewEncoder(w)
		for _, r := range results {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		for _, n := range notes {
			fmt.Fprintln(os.Stderr, "arenabench:", n)
		}
		return nil
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(doc())
	}
	env := environment()
	fmt.Fprintf(w, "arenabench %s, %s, GOMAXPROCS %s, %s CPUs, duration %v, seed %d\n\n",
		env["date"], env["go"], env["gomaxprocs"], env["cpus"], cfg.params.Duration, cfg.params.Seed)
	if err := bench.WriteTable(w, bench.Rows(results, cfg.workloads), ranAllocs(cfg, results)); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nMops/s: million operations per second, all threads together (higher is better).\n"+
		"ns/pair: one alloc+free pair per thread (lower is better). t/t1: wall time relative to the\n"+
		"same allocator's 1-thread run with the same work per thread (1.00 is perfect scaling).\n"+
		"heap÷go, cache÷best...: offheap's throughput over the Go heap's or the best native\n"+
		"allocator's in the same run (above 1: offheap is faster); in t/t1 rows, the other's\n"+
		"t/t1 over offheap's (above 1: offheap scales better). go GC: the Go heap run's GC\n"+
		"CPU seconds and cycles during the timed phase.\n")
	if slices.ContainsFunc(results, func(r bench.Result) bool { return slices.Contains(bench.NativeNames(), r.Alloc) }) {
		fmt.Fprintln(w, nativeNote(cfg))
	}
	for _, n := range notes {
		fmt.Fprintln(w, n)
	}
	return nil
}

// ranAllocs is the allocators, in -allocs order, that produced a result.
func ranAllocs(cfg *config, results []bench.Result) []string {
	var out []string
	for _, a := range cfg.allocs {
		if slices.ContainsFunc(results, func(r bench.Result) bool { return r.Alloc == a }) {
			out = append(out, a)
		}
	}
	return out
}

func writeJSON(path string, doc output) error {
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func writePlot(cfg *config, results []bench.Result) error {
	f, err := os.Create(cfg.plot)
	if err != nil {
		return err
	}
	if err := bench.WritePlot(f, results, cfg.workloads, ranAllocs(cfg, results)); err != nil {
		f.Close()
		os.Remove(cfg.plot)
		return err
	}
	return f.Close()
}

// nativeNote says how the C driver allocates: offheap, make, arenas and
// cgo's calloc all hand out zeroed memory; malloc does not.
func nativeNote(cfg *config) string {
	if cfg.nativeZero {
		return "Native allocators: calloc (zeroed memory, as offheap, go, go-arena and cgo)."
	}
	return "Native allocators: malloc, memory not zeroed (offheap, go, go-arena and cgo zero it); -native-zero uses calloc."
}

func environment() map[string]string {
	return map[string]string{
		"date":       time.Now().UTC().Format(time.RFC3339),
		"go":         runtime.Version(),
		"goos":       runtime.GOOS + "/" + runtime.GOARCH,
		"gomaxprocs": strconv.Itoa(runtime.GOMAXPROCS(0)),
		"cpus":       strconv.Itoa(runtime.NumCPU()),
		"gogc":       os.Getenv("GOGC"),
		"gomemlimit": os.Getenv("GOMEMLIMIT"),
	}
}
