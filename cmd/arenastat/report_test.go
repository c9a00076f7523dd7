package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/offheap/offheap/internal/heapview"
	"github.com/offheap/offheap/internal/heapview/heapviewtest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// fixedReport is a report over fixed snapshots, so its rendering is
// deterministic: a growshrink-like run with two phases.
func fixedReport() *Report {
	peak := heapview.Derive(heapviewtest.Stats(), heapviewtest.SpanBytes(), heapviewtest.RSS, true)
	st := heapviewtest.Stats()
	st.HeapReleased = st.HeapIdle
	st.Committed = st.HeapSys - st.HeapReleased
	after := heapview.Derive(st, heapviewtest.SpanBytes(), 3<<20, true)
	return &Report{
		Title: "offheap: workload growshrink (fixed)",
		Summary: &Summary{Workload: "growshrink", Duration: 1500 * time.Millisecond, Goroutines: 4,
			Allocs: 5975, Frees: 4670, AllocBytes: 3 << 20, OOM: 2, Scavenged: 1 << 20},
		Phases: []Phase{{"peak", peak}, {"after Scavenge", after}},
		Rates: &Rates{Interval: time.Second, AllocsPerSec: 1000, FreesPerSec: 900, ReleasedPerSec: 4096,
			LivePerSec: -2048, CommittedPerSec: -4096},
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	heapviewtest.Golden(t, name, got, *update)
}

func TestGoldenReport(t *testing.T) {
	for _, tc := range []struct{ format, file string }{
		{formatTable, "report.table.golden"},
		{formatJSON, "report.json.golden"},
		{formatProm, "report.prom.golden"},
	} {
		var b bytes.Buffer
		if err := fixedReport().write(&b, tc.format); err != nil {
			t.Fatal(err)
		}
		golden(t, tc.file, b.Bytes())
	}
}

func TestReportJSONRoundTrip(t *testing.T) {
	var b bytes.Buffer
	fixedReport().write(&b, formatJSON)
	var r Report
	if err := json.Unmarshal(b.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Phases) != 2 || r.Phases[1].Snapshot.HeapReleased != r.Phases[1].Snapshot.HeapIdle || r.Summary.OOM != 2 {
		t.Fatalf("round trip: %+v", r)
	}
}

func TestReportPromPhases(t *testing.T) {
	var b bytes.Buffer
	fixedReport().write(&b, formatProm)
	if !strings.Contains(b.String(), `offheap_heap_inuse_bytes{phase="after Scavenge"}`) {
		t.Fatalf("no phase labels:\n%s", b.String())
	}
	r := fixedReport()
	r.Phases = r.Phases[:1]
	b.Reset()
	r.write(&b, formatProm)
	if strings.Contains(b.String(), "phase=") {
		t.Fatal("phase label on a one-phase report")
	}
}

func TestRates(t *testing.T) {
	a := heapview.Snapshot{Figures: heapview.Figures{Mallocs: 100, Frees: 50, ScavengeReleased: 0, HeapAlloc: 1000, Committed: 8192}}
	b := heapview.Snapshot{Figures: heapview.Figures{Mallocs: 300, Frees: 250, ScavengeReleased: 4096, HeapAlloc: 0, Committed: 0}}
	r := rates(a, b, 2*time.Second)
	if r.AllocsPerSec != 100 || r.FreesPerSec != 100 || r.ReleasedPerSec != 2048 || r.LivePerSec != -500 || r.CommittedPerSec != -4096 {
		t.Fatalf("rates %+v", r)
	}
	// Snapshot times win over the caller's interval.
	a.Time = time.Unix(100, 0)
	b.Time = time.Unix(104, 0)
	if r := rates(a, b, time.Second); r.Interval != 4*time.Second || r.AllocsPerSec != 50 {
		t.Fatalf("rates with times %+v", r)
	}
	if rates(a, a, 0) != nil {
		t.Fatal("rates over no time")
	}
}
