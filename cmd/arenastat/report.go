package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/offheap/offheap/internal/heapview"
)

// Report is what every command prints: what ran, and one or more labelled
// snapshots of the heap (growshrink has three: peak, after free, after
// scavenge).
type Report struct {
	Title   string   `json:"title"`
	Summary *Summary `json:"summary,omitempty"`
	// Curve is massdelete's curve: the heap's figures every second of the
	// churn after the delete.
	Curve  []CurveSample `json:"curve,omitempty"`
	Phases []Phase       `json:"phases"`
	Rates  *Rates        `json:"rates,omitempty"`
}

// Phase is a snapshot taken at a named moment.
type Phase struct {
	Label    string            `json:"label"`
	Snapshot heapview.Snapshot `json:"snapshot"`
}

// Summary describes the run that produced the report.
type Summary struct {
	Workload   string        `json:"workload,omitempty"`
	Trace      string        `json:"trace,omitempty"`
	Duration   time.Duration `json:"duration_ns"`
	Goroutines int           `json:"goroutines,omitempty"`
	Allocs     uint64        `json:"allocs"`
	Frees      uint64        `json:"frees"`
	AllocBytes uint64        `json:"alloc_bytes"`  // requested sizes, summed
	OOM        uint64        `json:"oom_failures"` // allocations refused with ErrOutOfMemory
	Failed     uint64        `json:"other_failures,omitempty"`
	Scavenged  uint64        `json:"scavenged_bytes,omitempty"` // what h.Scavenge returned
	// MemoryLimit says what -memlimit gave the heap and where it came from
	// (auto: from /proc/meminfo).
	MemoryLimit string `json:"memory_limit,omitempty"`
	// Churn is what massdelete did and when in-use memory reached its
	// target.
	Churn *ChurnSummary `json:"churn,omitempty"`
}

// Rates are the changes per second between two snapshots (attach -watch).
type Rates struct {
	Interval        time.Duration `json:"interval_ns"`
	AllocsPerSec    float64       `json:"allocs_per_sec"`
	FreesPerSec     float64       `json:"frees_per_sec"`
	ReleasedPerSec  float64       `json:"released_bytes_per_sec"` // by scavenging
	LivePerSec      float64       `json:"live_bytes_per_sec"`     // change of live bytes
	CommittedPerSec float64       `json:"committed_bytes_per_sec"`
}

// rates computes the rates from a to b; dt is the fallback interval when
// the snapshots carry no times.
func rates(a, b heapview.Snapshot, dt time.Duration) *Rates {
	if !a.Time.IsZero() && !b.Time.IsZero() && b.Time.After(a.Time) {
		dt = b.Time.Sub(a.Time)
	}
	if dt <= 0 {
		return nil
	}
	sec := dt.Seconds()
	per := func(x, y uint64) float64 { return (float64(y) - float64(x)) / sec }
	return &Rates{
		Interval:        dt,
		AllocsPerSec:    per(a.Mallocs, b.Mallocs),
		FreesPerSec:     per(a.Frees, b.Frees),
		ReleasedPerSec:  per(a.ScavengeReleased, b.ScavengeReleased),
		LivePerSec:      per(a.HeapAlloc, b.HeapAlloc),
		CommittedPerSec: per(a.Committed, b.Committed),
	}
}

// write renders the report in format.
func (r *Report) write(w io.Writer, format string) error {
	switch format {
	case formatJSON:
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return err
		}
		_, err = w.Write(append(b, '\n'))
		return err
	case formatProm:
		var series []heapview.Series
		for _, p := range r.Phases {
			s := heapview.Series{Snap: p.Snapshot}
			if len(r.Phases) > 1 {
				s.Labels = []heapview.Label{{Name: "phase", Value: p.Label}}
			}
			series = append(series, s)
		}
		return heapview.WriteProm(w, series...)
	}
	return r.writeTable(w)
}

func (r *Report) writeTable(w io.Writer) error {
	ew := &heapview.ErrWriter{W: w}
	ew.Printf("%s\n", r.Title)
	if s := r.Summary; s != nil {
		ew.Printf("  %d allocs (%s requested), %d frees in %s", s.Allocs, heapview.Bytes(s.AllocBytes), s.Frees,
			s.Duration.Round(time.Millisecond))
		if s.Goroutines > 0 {
			ew.Printf(", %d goroutines", s.Goroutines)
		}
		ew.Printf("\n")
		if s.Duration > 0 {
			ew.Printf("  %.0f allocs/s, %.0f frees/s\n", float64(s.Allocs)/s.Duration.Seconds(), float64(s.Frees)/s.Duration.Seconds())
		}
		if s.MemoryLimit != "" {
			ew.Printf("  memory limit: %s\n", s.MemoryLimit)
		}
		ew.Printf("  out-of-memory failures: %d", s.OOM)
		if s.Failed > 0 {
			ew.Printf(", other failures: %d", s.Failed)
		}
		ew.Printf("\n")
		if s.Scavenged > 0 {
			ew.Printf("  Scavenge returned %s to the kernel\n", heapview.Bytes(s.Scavenged))
		}
		if c := s.Churn; c != nil {
			writeChurn(ew, c, r.Curve)
		}
	}
	if rt := r.Rates; rt != nil {
		ew.Printf("  over %s: %.0f allocs/s, %.0f frees/s, %s/s released, live %s/s, committed %s/s\n",
			rt.Interval.Round(time.Millisecond), rt.AllocsPerSec, rt.FreesPerSec,
			signedBytes(rt.ReleasedPerSec), signedBytes(rt.LivePerSec), signedBytes(rt.CommittedPerSec))
	}
	for i, p := range r.Phases {
		ew.Printf("\n== %s ==\n", p.Label)
		if ew.Err == nil {
			ew.Err = heapview.WriteTable(w, p.Snapshot)
		}
		if i > 0 {
			prev := r.Phases[i-1].Snapshot
			ew.Printf("\n  since %s: committed %s -> %s", r.Phases[i-1].Label,
				heapview.Bytes(prev.Committed), heapview.Bytes(p.Snapshot.Committed))
			if prev.RSSKnown && p.Snapshot.RSSKnown {
				ew.Printf(", resident %s -> %s", heapview.Bytes(prev.RSS), heapview.Bytes(p.Snapshot.RSS))
			}
			ew.Printf(", released %s -> %s\n", heapview.Bytes(prev.HeapReleased), heapview.Bytes(p.Snapshot.HeapReleased))
		}
	}
	return ew.Err
}

// signedBytes formats a possibly negative byte rate.
func signedBytes(v float64) string {
	if v < 0 {
		return "-" + heapview.Bytes(uint64(-v))
	}
	return heapview.Bytes(uint64(v))
}

// writeChurn writes massdelete's summary and curve.
func writeChurn(ew *heapview.ErrWriter, c *ChurnSummary, curve []CurveSample) {
	pace := "as fast as it goes"
	if c.Turnover > 0 {
		pace = fmt.Sprintf("replacing %g %% of it a second", c.Turnover)
	}
	ew.Printf("  filled %s in %s, deleted %d %% at random, churned at %s live, %s\n",
		heapview.Bytes(c.Fill), c.FillTime.Round(time.Millisecond), c.DeletedPercent, heapview.Bytes(c.LiveAfterDelete), pace)
	switch {
	case c.BelowTarget:
		ew.Printf("  in use / live fell below %.1f %s after the delete\n", c.TargetRatio, c.BelowTargetAt.Round(100*time.Millisecond))
	case len(curve) > 0:
		last := curve[len(curve)-1]
		ew.Printf("  in use / live did not fall below %.1f in %s (%.2f at the end)\n", c.TargetRatio,
			last.T.Round(100*time.Millisecond), last.InusePerLive)
	}
	ew.Printf("\n  %7s %11s %11s %8s %11s %11s %11s\n", "t", "in use", "live", "use/live", "committed", "resident", "released")
	for _, s := range curve {
		rss := "unknown"
		if s.RSSKnown {
			rss = heapview.Bytes(s.RSS)
		}
		ew.Printf("  %6.1fs %11s %11s %8.2f %11s %11s %11s\n", s.T.Seconds(), heapview.Bytes(s.HeapInuse),
			heapview.Bytes(s.HeapAlloc), s.InusePerLive, heapview.Bytes(s.Committed), rss, heapview.Bytes(s.HeapReleased))
	}
}
