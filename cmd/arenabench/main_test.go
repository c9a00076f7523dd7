package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/offheap/offheap/bench"
)

func TestParseFlagsQuick(t *testing.T) {
	cfg, err := parseFlags([]string{"-quick", "-scratch-reps=7"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	q := bench.Quick()
	if cfg.params.Duration != q.Duration || cfg.params.LarsonBigLive != q.LarsonBigLive {
		t.Errorf("quick params %+v", cfg.params)
	}
	if cfg.params.ScratchReps != 7 {
		t.Errorf("-scratch-reps=7 overridden by -quick: %d", cfg.params.ScratchReps)
	}
	if len(cfg.threads) != 2 {
		t.Errorf("quick threads %v, want 1,2", cfg.threads)
	}
}

func TestParseFlagsErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-workloads=nope"},
		{"-threads=0"},
		{"-allocs=go,nope"},
		{"-format=xml"},
		{"-preload=glibc=/x.so"},
		{"-larson-min=2000"}, // above larson-max
		{"-duration=0s"},
		{"extra"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) succeeded; want an error", args)
		}
	}
}

// TestEndToEnd runs two shapes on the in-process allocators and, when gcc
// is there, glibc through the C driver, and checks the JSON document:
// every run present with work done, and the ratios computed.
func TestEndToEnd(t *testing.T) {
	allocs := "offheap-heap,offheap-cache,go"
	args := []string{"-workloads=pair-64,xmalloc", "-threads=1,2", "-duration=10ms", "-format=json"}
	natives := 0
	if cc, err := exec.LookPath("gcc"); err == nil {
		bin := filepath.Join(t.TempDir(), "shapes")
		if out, err := exec.Command(cc, "-O2", "-pthread", "-o", bin, "../../bench/c/shapes.c").CombinedOutput(); err != nil {
			t.Fatalf("gcc: %v\n%s", err, out)
		}
		allocs += ",glibc"
		args = append(args, "-shapes="+bin)
		natives = 1
	}
	cfg, err := parseFlags(append(args, "-allocs="+allocs), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	results, notes := runAll(cfg, io.Discard)
	var out bytes.Buffer
	if err := report(cfg, results, notes, &out); err != nil {
		t.Fatal(err)
	}
	var doc output
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if want := 2 * 2 * (3 + natives); len(doc.Results) != want {
		t.Fatalf("%d results, want %d: %+v", len(doc.Results), want, doc.Results)
	}
	for _, r := range doc.Results {
		if r.Error != "" || r.Ops == 0 {
			t.Errorf("run %+v: want work and no error", r)
		}
	}
	if len(doc.Rows) != 4 {
		t.Fatalf("%d rows, want 4", len(doc.Rows))
	}
	for _, row := range doc.Rows {
		if _, ok := row.Ratios[bench.NameHeap+"/go"]; !ok {
			t.Errorf("row %s/%d has no heap/go ratio", row.Workload, row.Threads)
		}
		if natives > 0 && row.BestNative != bench.NameGlibc {
			t.Errorf("row %s/%d best native %q, want glibc", row.Workload, row.Threads, row.BestNative)
		}
	}
	if strings.Contains(strings.Join(notes, "\n"), "error") {
		t.Errorf("notes: %v", notes)
	}
	t.Logf("took %v", time.Since(t0))
}
