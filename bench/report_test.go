package bench

import (
	"bytes"
	"image/png"
	"math"
	"strings"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9*math.Max(1, math.Abs(b)) }

// TestRowsRatios checks the figures Rows derives: Mops/s, ns per pair
// and thread, time relative to one thread, the best native allocator and
// offheap's ratios to the Go heap and to that allocator.
func TestRowsRatios(t *testing.T) {
	ws := []Workload{
		{Name: "larson", Unit: UnitOps},
		{Name: "pair-64", Unit: UnitPair},
		{Name: "cache-thrash", Unit: UnitScaling},
	}
	results := []Result{
		{Workload: "larson", Alloc: NameHeap, Threads: 2, Ops: 4e6, Seconds: 1},
		{Workload: "larson", Alloc: NameGo, Threads: 2, Ops: 2e6, Seconds: 1, GCCPUSeconds: 0.5, GCCycles: 7},
		{Workload: "larson", Alloc: NameGlibc, Threads: 2, Ops: 3e6, Seconds: 1},
		{Workload: "larson", Alloc: NameJemalloc, Threads: 2, Ops: 8e6, Seconds: 2}, // 4e6/s
		{Workload: "larson", Alloc: NameTcmalloc, Threads: 2, Error: "boom"},
		{Workload: "pair-64", Alloc: NameCache, Threads: 2, Ops: 1e8, Seconds: 1},
		{Workload: "cache-thrash", Alloc: NameHeap, Threads: 1, Ops: 1000, Seconds: 0.5},
		{Workload: "cache-thrash", Alloc: NameHeap, Threads: 2, Ops: 2000, Seconds: 0.75},
	}
	rows := Rows(results, ws)
	if len(rows) != 4 {
		t.Fatalf("%d rows, want 4: %+v", len(rows), rows)
	}
	l := rows[0]
	if l.Workload != "larson" || l.BestNative != NameJemalloc || !near(l.Values[NameHeap], 4) ||
		!near(l.Ratios[NameHeap+"/go"], 2) || !near(l.Ratios[NameHeap+"/best"], 1) || l.GoGCCycles != 7 {
		t.Errorf("larson row %+v", l)
	}
	if _, ok := l.Values[NameTcmalloc]; ok {
		t.Errorf("failed run has a value: %+v", l)
	}
	if p := rows[1]; !near(p.Values[NameCache], 20) { // 1 s × 2 threads / 1e8 pairs
		t.Errorf("pair row %+v, want 20 ns/pair", p)
	}
	if s := rows[3]; s.Threads != 2 || !near(s.Values[NameHeap], 1.5) {
		t.Errorf("thrash row %+v, want 1.5× the 1-thread time", s)
	}
	var b bytes.Buffer
	if err := WriteTable(&b, rows, []string{NameHeap, NameCache, NameGo, NameGlibc, NameJemalloc}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| larson ", "2.00×", "jemalloc", "0.500/7", "20.0"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

// TestWritePlot draws a two-thread-count plot and decodes it back.
func TestWritePlot(t *testing.T) {
	ws := []Workload{{Name: "larson", Unit: UnitOps}, {Name: "larson-big", Unit: UnitOps}}
	results := []Result{
		{Workload: "larson", Alloc: NameHeap, Threads: 1, Ops: 1e6, Seconds: 1},
		{Workload: "larson", Alloc: NameHeap, Threads: 2, Ops: 3e6, Seconds: 1},
		{Workload: "larson", Alloc: NameGo, Threads: 1, Ops: 2e6, Seconds: 1},
		{Workload: "larson", Alloc: NameGo, Threads: 2, Ops: 2e6, Seconds: 1},
		{Workload: "larson-big", Alloc: NameGo, Threads: 2, Ops: 2e6, Seconds: 1},
	}
	var b bytes.Buffer
	if err := WritePlot(&b, results, ws, []string{NameHeap, NameGo}); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&b)
	if err != nil {
		t.Fatal(err)
	}
	// One panel (larson-big ran at one thread count only) and the legend.
	if w := img.Bounds().Dx(); w != panelW*panelCols {
		t.Errorf("width %d, want %d", w, panelW*panelCols)
	}
	// The offheap-heap line's colour is drawn somewhere.
	want := palette()[0]
	found := false
	for y := 0; y < img.Bounds().Dy() && !found; y++ {
		for x := 0; x < img.Bounds().Dx(); x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if uint8(r>>8) == want.R && uint8(g>>8) == want.G && uint8(bl>>8) == want.B {
				found = true
				break
			}
		}
	}
	if !found {
		t.Error("no pixel in offheap-heap's colour")
	}
	if err := WritePlot(&b, results[4:], ws, []string{NameGo}); err == nil {
		t.Error("plot with no multi-thread workload: want an error")
	}
}

// TestScalingRatios checks that t/t1 rows compare scaling: a native
// allocator that is faster per operation but scales worse loses.
func TestScalingRatios(t *testing.T) {
	ws := []Workload{{Name: "cache-thrash", Unit: UnitScaling}}
	results := []Result{
		{Workload: "cache-thrash", Alloc: NameHeap, Threads: 1, Ops: 1000, Seconds: 1},
		{Workload: "cache-thrash", Alloc: NameHeap, Threads: 2, Ops: 2000, Seconds: 1.2}, // t/t1 1.2
		{Workload: "cache-thrash", Alloc: NameGlibc, Threads: 1, Ops: 1000, Seconds: 0.5},
		{Workload: "cache-thrash", Alloc: NameGlibc, Threads: 2, Ops: 2000, Seconds: 1.2}, // t/t1 2.4
		{Workload: "cache-thrash", Alloc: NameMimalloc, Threads: 1, Ops: 1000, Seconds: 0.5},
		{Workload: "cache-thrash", Alloc: NameMimalloc, Threads: 2, Ops: 2000, Seconds: 0.9}, // t/t1 1.8
	}
	rows := Rows(results, ws)
	if len(rows) != 2 {
		t.Fatalf("%d rows", len(rows))
	}
	r := rows[1]
	if r.BestNative != NameMimalloc || !near(r.Ratios[NameHeap+"/best"], 1.8/1.2) {
		t.Errorf("row %+v: want mimalloc best and heap/best 1.5", r)
	}
	var b bytes.Buffer
	if err := WriteTable(&b, rows, []string{NameHeap, NameGlibc, NameMimalloc}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "cache÷") {
		t.Errorf("cache ratio columns without an offheap-cache column:\n%s", b.String())
	}
}

func TestMedian(t *testing.T) {
	rs := []Result{
		{Ops: 300, Seconds: 1}, {Ops: 100, Seconds: 1}, {Ops: 200, Seconds: 1},
	}
	m := Median(rs)
	if m.Ops != 200 || m.Runs != 3 || !near(m.SpreadPct, 100) {
		t.Errorf("Median = %+v; want the 200-op run, 3 runs, 100%% spread", m)
	}
	rs[1].Error = "boom"
	if m := Median(rs); m.Error != "boom" {
		t.Errorf("Median with a failed run = %+v; want the failure", m)
	}
}
