// Command arenabench runs the allocator benchmark shapes of package bench
// (mimalloc-bench's larson, xmalloc-test, cache-scratch, cache-thrash,
// mstress, alloc-test, glibc-simple, glibc-thread and an alloc+free pair)
// side by side on offheap's Heap and Cache, the Go heap, Go arenas, cgo
// calloc/free and native allocators, and prints one table.
//
// Usage:
//
//	arenabench [-quick] [-workloads all|NAME,...] [-threads 1,2,4] [-duration 1s]
//	           [-allocs NAME,...] [-format table|json|jsonl] [-json out.json] [-plot out.png]
//	           [-shapes bench/c/shapes] [-preload tcmalloc=LIB,jemalloc=LIB,mimalloc=LIB]
//	           [-arenas arenabench-arenas] [-native-zero] [-count N] [workload parameter flags]
//
// Go-side allocators run in this process, each offheap run on a fresh
// Heap. Native allocators run in the C driver (-shapes), a process per
// run, glibc as is and the others under LD_PRELOAD (-preload names each
// library); go-arena runs in a second build of this command
// made with GOEXPERIMENT=arenas (-arenas). An allocator asked for but not
// available is skipped with a line saying why. bench/compare.sh builds all
// of it and runs the whole comparison (make bench-compare).
//
// -format jsonl prints each run as one JSON line and no table: the form
// the arenas build reports in.
//
// Usage errors exit 2; a failed run is reported in the table's notes and
// makes the command exit 1.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/offheap/offheap/bench"
)

// defaultThreads: 1, 2 and 4 show scaling and oversubscription on the
// 2-core development machine and scaling on a bigger one, and keep a full
// run near five minutes.
const (
	defaultThreads = "1,2,4"
	quickThreads   = "1,2"
)

// defaultAllocs lists every allocator, in table column order.
func defaultAllocs() []string {
	return append([]string{bench.NameHeap, bench.NameCache, bench.NameGo, bench.NameGoArena, bench.NameCgo}, bench.NativeNames()...)
}

type config struct {
	params     bench.Params
	workloads  []bench.Workload
	threads    []int
	allocs     []string
	format     string
	plot       string
	jsonFile   string
	shapes     string
	preload    map[string]string
	arenas     string
	nativeZero bool
	count      int
}

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "arenabench:", err)
		os.Exit(2)
	}
	results, notes := runAll(cfg, os.Stderr)
	if err := report(cfg, results, notes, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "arenabench:", err)
		os.Exit(1)
	}
	for _, r := range results {
		if r.Error != "" {
			os.Exit(1)
		}
	}
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("arenabench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := &config{params: bench.Defaults()}
	p := &cfg.params
	quick := fs.Bool("quick", false, "quick mode: "+quickThreads+" threads, "+bench.QuickDuration.String()+" runs, smaller big live set and fewer false-sharing writes (under 2 minutes)")
	workloads := fs.String("workloads", "all", "comma-separated workloads, or all")
	threads := fs.String("threads", defaultThreads, "comma-separated thread counts")
	allocs := fs.String("allocs", strings.Join(defaultAllocs(), ","), "comma-separated allocators, in column order")
	fs.StringVar(&cfg.format, "format", "table", "output: table, json, or jsonl (one line per run, no table)")
	fs.StringVar(&cfg.jsonFile, "json", "", "also write the -format json document to this file")
	fs.StringVar(&cfg.plot, "plot", "", "write a PNG of throughput by thread count to this file")
	fs.StringVar(&cfg.shapes, "shapes", "", "the C driver (bench/c/shapes.c, built); empty skips native allocators")
	preload := fs.String("preload", "", "native allocator libraries for LD_PRELOAD, as name=path,...")
	fs.StringVar(&cfg.arenas, "arenas", "", "this command built with GOEXPERIMENT=arenas, for go-arena; empty skips it unless this binary has arenas")
	fs.IntVar(&cfg.count, "count", 1, "run each allocator, shape and thread count this many times and report the median run (by throughput)")
	fs.BoolVar(&cfg.nativeZero, "native-zero", false, "native allocators use calloc (zeroed, as offheap and make) instead of malloc")
	fs.DurationVar(&p.Duration, "duration", p.Duration, "timed phase of each throughput run")
	fs.Uint64Var(&p.Seed, "seed", p.Seed, "RNG seed, the same for every allocator")
	for _, s := range p.Specs() {
		fs.IntVar(s.Ptr, s.Name, *s.Ptr, s.Usage)
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: arenabench [flags]\n\nworkloads:\n")
		for _, w := range bench.Workloads() {
			fmt.Fprintf(stderr, "  %-14s %s\n", w.Name, w.Doc)
		}
		fmt.Fprintf(stderr, "\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		q := bench.Quick()
		if !set["duration"] {
			p.Duration = q.Duration
		}
		if !set["larson-big-live"] {
			p.LarsonBigLive = q.LarsonBigLive
		}
		if !set["scratch-reps"] {
			p.ScratchReps = q.ScratchReps
		}
		if !set["threads"] {
			*threads = quickThreads
		}
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if cfg.count < 1 {
		return nil, fmt.Errorf("-count %d: want at least 1", cfg.count)
	}
	var err error
	if cfg.workloads, err = pickWorkloads(*workloads); err != nil {
		return nil, err
	}
	if cfg.threads, err = parseThreads(*threads); err != nil {
		return nil, err
	}
	cfg.allocs = splitList(*allocs)
	for _, a := range cfg.allocs {
		if !slices.Contains(defaultAllocs(), a) {
			return nil, fmt.Errorf("unknown allocator %q (have %s)", a, strings.Join(defaultAllocs(), ", "))
		}
	}
	switch cfg.format {
	case "table", "json", "jsonl":
	default:
		return nil, fmt.Errorf("-format %q: want table, json or jsonl", cfg.format)
	}
	cfg.preload = map[string]string{}
	for _, kv := range splitList(*preload) {
		name, path, ok := strings.Cut(kv, "=")
		if !ok || !slices.Contains(bench.NativeNames(), name) || name == bench.NameGlibc {
			return nil, fmt.Errorf("-preload %q: want tcmalloc=, jemalloc= or mimalloc=PATH", kv)
		}
		cfg.preload[name] = path
	}
	return cfg, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func pickWorkloads(s string) ([]bench.Workload, error) {
	all := bench.Workloads()
	if s == "all" {
		return all, nil
	}
	var out []bench.Workload
	for _, name := range splitList(s) {
		i := slices.IndexFunc(all, func(w bench.Workload) bool { return w.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("unknown workload %q", name)
		}
		out = append(out, all[i])
	}
	if len(out) == 0 {
		return nil, errors.New("no workloads")
	}
	return out, nil
}

func parseThreads(s string) ([]int, error) {
	var out []int
	for _, f := range splitList(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-threads: bad count %q", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("-threads: none given")
	}
	return out, nil
}

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
