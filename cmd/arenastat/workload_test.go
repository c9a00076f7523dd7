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

// quickFill is massdelete's fill in the in-process tests: enough objects
// (about 14,000) to leave a scattered live set after the delete.
const quickFill = 4 << 20

var quiet = &output{stdout: io.Discard, stderr: io.Discard}

// TestWorkloadsInProcess runs every workload in this process, where the
// race detector sees its goroutines, and checks its books balance.
func TestWorkloadsInProcess(t *testing.T) {
	for name := range workloads {
		t.Run(name, func(t *testing.T) {
			cfg := runConfig{workload: name, duration: quickRun, goroutines: 3, fill: quickFill}
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
			if name == "massdelete" {
				checkMassDelete(t, rep, quickFill)
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

// checkMassDelete checks a massdelete report: the fill reached the size
// asked, the delete left about a tenth of it live, and the curve starts
// at the delete with the figures of the heap at its points.
func checkMassDelete(t *testing.T, rep *Report, fill uint64) {
	t.Helper()
	c := rep.Summary.Churn
	if c == nil || len(rep.Curve) < 2 || len(rep.Phases) != 3 {
		t.Fatalf("massdelete report: churn %+v, %d curve samples, %d phases", c, len(rep.Curve), len(rep.Phases))
	}
	peak := rep.Phases[0].Snapshot
	// The fill is counted in requested bytes; the heap's live bytes are
	// class sizes, at most 1/8 more for these sizes.
	if peak.HeapAlloc < fill || peak.HeapAlloc > fill+fill/4 {
		t.Errorf("live after the fill %d, asked for %d", peak.HeapAlloc, fill)
	}
	// 90 % of the objects, at random: a tenth of the bytes, give or take.
	if c.LiveAfterDelete < peak.HeapAlloc/20 || c.LiveAfterDelete > peak.HeapAlloc/5 {
		t.Errorf("live after the delete %d of %d", c.LiveAfterDelete, peak.HeapAlloc)
	}
	first := rep.Curve[0]
	if first.T < 0 || first.T > massSampleEvery/2 || first.HeapAlloc != c.LiveAfterDelete ||
		first.HeapInuse < first.HeapAlloc || first.InusePerLive != float64(first.HeapInuse)/float64(first.HeapAlloc) {
		t.Errorf("first sample %+v, live after delete %d", first, c.LiveAfterDelete)
	}
	// Right after the delete the survivors' spans hold the heap: far more
	// in use than live.
	if first.InusePerLive < 2 {
		t.Errorf("in use / live %.2f right after deleting 90 %%", first.InusePerLive)
	}
	for i := 1; i < len(rep.Curve); i++ {
		if rep.Curve[i].T < rep.Curve[i-1].T {
			t.Errorf("curve goes back in time: %v", rep.Curve)
		}
	}
	var at time.Duration = -1
	for _, s := range rep.Curve {
		if s.InusePerLive < c.TargetRatio {
			at = s.T
			break
		}
	}
	if c.BelowTarget != (at >= 0) || (c.BelowTarget && c.BelowTargetAt != at) {
		t.Errorf("summary says below %.1f: %v at %v; the curve says %v", c.TargetRatio, c.BelowTarget, c.BelowTargetAt, at)
	}
}

// TestMassDeleteTurnover: -turnover paces the churn to that share of the
// live set a second, where unpaced it replaces the live set many times.
func TestMassDeleteTurnover(t *testing.T) {
	const turnover, d = 10, 500 * time.Millisecond
	cfg := runConfig{workload: "massdelete", duration: d, goroutines: 2, fill: quickFill, turnover: turnover}
	rep, err := runWorkload(cfg, quiet, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkMassDelete(t, rep, quickFill)
	objs := rep.Phases[1].Snapshot.HeapObjects // live after the delete
	churned := rep.Summary.Allocs - rep.Phases[0].Snapshot.Mallocs
	// The pace lets each goroutine run up to a batch ahead, and the clock
	// stops the run up to a batch late.
	want := float64(objs) * turnover / 100 * d.Seconds()
	if max := want + float64(2*cfg.goroutines*massPaceBatch); churned == 0 || float64(churned) > max {
		t.Fatalf("%d replacements in %s at %d %% a second of %d live objects: want about %.0f, at most %.0f",
			churned, d, turnover, objs, want, max)
	}
	if rep.Summary.Churn.Turnover != turnover {
		t.Errorf("summary turnover %v", rep.Summary.Churn.Turnover)
	}
}
