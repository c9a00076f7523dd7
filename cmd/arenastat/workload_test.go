package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/offheap/offheap/arena"
	"github.com/offheap/offheap/trace"
)

// quickRun is short enough for the race detector on two cores.
const quickRun = 150 * time.Millisecond

var quiet = &output{stdout: io.Discard, stderr: io.Discard}

// TestWorkloadsInProcess runs every workload in this process, where the
// race detector sees its goroutines, and checks its books balance.
func TestWorkloadsInProcess(t *testing.T) {
	for name := range workloads {
		t.Run(name, func(t *testing.T) {
			cfg := runConfig{workload: name, duration: quickRun, goroutines: 3}
			var after arena.Stats
			rep, err := runWorkload(cfg, quiet, func(h *arena.Heap) {
				if err := h.Verify(); err != nil {
					t.Error(err)
				}
				after = h.Stats()
			})
			if err != nil {
				t.Fatal(err)
			}
			s := rep.Summary
			if s.Allocs == 0 || s.OOM != 0 {
				t.Fatalf("summary %+v", s)
			}
			last := rep.Phases[len(rep.Phases)-1].Snapshot
			if last.Mallocs != s.Allocs || last.Frees != s.Frees || after.HeapObjects != s.Allocs-s.Frees {
				t.Fatalf("heap counts %d/%d, run counts %d/%d", last.Mallocs, last.Frees, s.Allocs, s.Frees)
			}
			if name == "growshrink" {
				peak, end := rep.Phases[0].Snapshot, rep.Phases[2].Snapshot
				if len(rep.Phases) != 3 || end.Committed >= peak.Committed || s.Scavenged == 0 {
					t.Fatalf("growshrink gave nothing back: peak %d, end %d committed", peak.Committed, end.Committed)
				}
			}
		})
	}
}

func TestWorkloadMemoryLimit(t *testing.T) {
	cfg := runConfig{workload: "growshrink", duration: time.Second, goroutines: 2, memLimit: 16 << 20}
	rep, err := runWorkload(cfg, quiet, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Summary.OOM == 0 {
		t.Fatalf("no out-of-memory failures under a 16 MiB limit: %+v", rep.Summary)
	}
	if peak := rep.Phases[0].Snapshot; peak.Committed > 16<<20 || peak.MemoryLimit != 16<<20 {
		t.Fatalf("committed %d under a limit of %d", peak.Committed, peak.MemoryLimit)
	}
}

// TestRecordReplay records a run and replays it: the replay ends with the
// live objects the run had when recording stopped.
func TestRecordReplay(t *testing.T) {
	file := filepath.Join(t.TempDir(), "run.trace")
	cfg := runConfig{workload: "mixed", duration: 5 * time.Second, goroutines: 2, maxAllocs: 3000, record: file}
	rep, err := runWorkload(cfg, quiet, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Summary.Allocs < 3000 || rep.Summary.Duration > 4*time.Second {
		t.Fatalf("-ops did not bound the run: %+v", rep.Summary)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	again, err := replay(file, bytes.NewReader(data), 0, "")
	if err != nil {
		t.Fatal(err)
	}
	s := again.Summary
	if s.Allocs != rep.Summary.Allocs || s.Frees != rep.Summary.Frees {
		t.Fatalf("replay did %d/%d, run did %d/%d", s.Allocs, s.Frees, rep.Summary.Allocs, rep.Summary.Frees)
	}
	if got, want := again.Phases[0].Snapshot.HeapObjects, rep.Phases[0].Snapshot.HeapObjects; got != want {
		t.Fatalf("replay ends with %d objects, the run had %d", got, want)
	}
}

func TestReplayErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"nonsense\n", "t.trace: line 1: bad header"},
		{trace.Header + "\na 1 10\nf 2\n", "t.trace: line 3: free of unknown id 2"},
	} {
		_, err := replay("t.trace", strings.NewReader(tc.in), 0, "")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("replay(%q) = %v, want %q", tc.in, err, tc.want)
		}
	}
	// Allocations the heap could never serve are counted, and their frees
	// skipped.
	rep, err := replay("t.trace", strings.NewReader(trace.Header+"\na 1 1099511627776\na 2 8\nf 1\nf 2\n"), 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if s := rep.Summary; s.Allocs != 1 || s.Frees != 1 || s.OOM+s.Failed != 1 {
		t.Fatalf("summary %+v", s)
	}
}

func TestProgress(t *testing.T) {
	var b bytes.Buffer
	drawProgress(&b, "mixed", 0.5, "12 allocs")
	if got := b.String(); !strings.Contains(got, "[###############...............]  50% 12 allocs") || !strings.HasPrefix(got, "\r") {
		t.Fatalf("progress %q", got)
	}
	var sb syncBuffer
	stop := startProgress(&sb, "x", func() float64 { return 2 }, func() string { return "" })
	time.Sleep(2 * progressTick)
	stop()
	if got := sb.String(); !strings.Contains(got, "100%") || !strings.HasSuffix(got, "\r\x1b[K") {
		t.Fatalf("progress %q", got)
	}
}

// TestReplayStopsAtMemoryLimit: a trace asking for more than the limit
// stops with ErrOutOfMemory naming the line, size and limit, instead of
// running on (or, with no limit, growing until the kernel kills it).
func TestReplayStopsAtMemoryLimit(t *testing.T) {
	var b strings.Builder
	b.WriteString(trace.Header + "\n")
	for i := 1; i <= 64; i++ {
		fmt.Fprintf(&b, "a %d %d\n", i, 1<<20) // 64 MiB in all
	}
	_, err := replay("big.trace", strings.NewReader(b.String()), 16<<20, "16.0 MiB (-memlimit)")
	if !errors.Is(err, arena.ErrOutOfMemory) {
		t.Fatalf("replay under a 16 MiB limit: %v, want ErrOutOfMemory", err)
	}
	for _, want := range []string{"big.trace: line ", "1048576 bytes", "16.0 MiB (-memlimit)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestAutoMemLimit(t *testing.T) {
	const meminfo = "MemTotal:       32000000 kB\nMemFree:         1000000 kB\nMemAvailable:   16777216 kB\nBuffers:          100 kB\n"
	limit, note, err := autoMemLimit(meminfo)
	if want := int64(16777216) << 10 * autoLimitPercent / 100; err != nil || limit != want {
		t.Fatalf("autoMemLimit = %d, %v; want %d", limit, err, want)
	}
	if !strings.Contains(note, "12.0 GiB") || !strings.Contains(note, "MemAvailable") || !strings.Contains(note, "-memlimit") {
		t.Errorf("note %q", note)
	}
	// Kernels before 3.14 have no MemAvailable: MemTotal stands in.
	if limit, _, err := autoMemLimit("MemTotal: 1000 kB\nMemFree: 10 kB\n"); err != nil || limit != 1000<<10*autoLimitPercent/100 {
		t.Errorf("without MemAvailable: %d, %v", limit, err)
	}
	for _, bad := range []string{"", "MemAvailable: lots kB\n", "MemAvailable: 0 kB\n", "MemAvailable: 12 MB\n", "MemAvailable: 99999999999999999999 kB\n"} {
		if limit, _, err := autoMemLimit(bad); err == nil {
			t.Errorf("autoMemLimit(%q) = %d, want an error", bad, limit)
		}
	}
}

func TestMemLimitFlag(t *testing.T) {
	for in, want := range map[string]memLimitFlag{
		"auto": {auto: true}, "none": {}, "0": {}, "256MiB": {bytes: 256 << 20},
	} {
		var m memLimitFlag
		if err := m.Set(in); err != nil || m != want {
			t.Errorf("Set(%q) = %+v, %v; want %+v", in, m, err, want)
		}
	}
	var m memLimitFlag
	if m.Set("-1") == nil || m.Set("some") == nil {
		t.Error("bad -memlimit accepted")
	}
}
