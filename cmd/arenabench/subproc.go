package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/offheap/offheap/bench"
)

// runNative runs workload w at each thread count in the C driver, under
// LD_PRELOAD for every allocator but glibc.
func runNative(cfg *config, alloc string, w bench.Workload, threads []int) []bench.Result {
	var rs []bench.Result
	for _, t := range threads {
		rs = append(rs, runNativeOnce(cfg, alloc, w, t))
	}
	return rs
}

// runNativeOnce runs one workload at one thread count in a process of its
// own, so every native run starts from a fresh allocator as every offheap
// run starts from a fresh Heap. It checks the driver found the preloaded
// library mapped, so a preload that silently did not take is an error,
// not glibc's figures under another name.
func runNativeOnce(cfg *config, alloc string, w bench.Workload, threads int) bench.Result {
	args := append([]string{"alloc=" + alloc, "workloads=" + w.Name, "threads=" + fmt.Sprint(threads)}, cfg.params.Args()...)
	if cfg.nativeZero {
		args = append(args, "zero=1")
	} else {
		args = append(args, "zero=0")
	}
	cmd := exec.Command(cfg.shapes, args...)
	cmd.Env = os.Environ()
	lib := cfg.preload[alloc]
	if lib != "" {
		cmd.Env = append(cmd.Env, "LD_PRELOAD="+lib)
	}
	r := runChild(cmd, alloc, w, []int{threads})[0]
	want := "lib" + alloc
	if alloc == bench.NameGlibc {
		want = "libc"
	}
	if r.Error == "" && !strings.HasPrefix(r.MallocLib, want) {
		r.Error = fmt.Sprintf("the driver ran on %q, not %s (LD_PRELOAD=%s)", r.MallocLib, alloc, lib)
	}
	return r
}

// runArenas runs workload w on go-arena in the GOEXPERIMENT=arenas build.
func runArenas(cfg *config, w bench.Workload, threads []int) []bench.Result {
	args := []string{"-allocs=" + bench.NameGoArena, "-format=jsonl", "-workloads=" + w.Name, "-threads=" + joinInts(threads)}
	for _, a := range cfg.params.Args() {
		name, val, _ := strings.Cut(a, "=")
		if name == "duration-ms" {
			args = append(args, "-duration="+cfg.params.Duration.String())
			continue
		}
		args = append(args, "-"+name+"="+val)
	}
	return runChild(exec.Command(cfg.arenas, args...), bench.NameGoArena, w, threads)
}

// runChild runs cmd and reads one JSON result a line from its output.
// A failed child is one error result per thread count.
func runChild(cmd *exec.Cmd, alloc string, w bench.Workload, threads []int) []bench.Result {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var rs []bench.Result
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		var r bench.Result
		if jerr := json.Unmarshal(sc.Bytes(), &r); jerr != nil {
			err = fmt.Errorf("bad output line %q: %v", sc.Text(), jerr)
			break
		}
		rs = append(rs, r)
	}
	if err == nil && len(rs) != len(threads) {
		err = fmt.Errorf("%d results for %d thread counts", len(rs), len(threads))
	}
	if err != nil {
		msg := fmt.Sprintf("%s: %v: %s", cmd.Path, err, strings.TrimSpace(stderr.String()))
		rs = rs[:0]
		for _, t := range threads {
			rs = append(rs, bench.Result{Workload: w.Name, Alloc: alloc, Threads: t, Error: msg})
		}
	}
	return rs
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ",")
}
