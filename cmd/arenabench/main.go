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
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

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
