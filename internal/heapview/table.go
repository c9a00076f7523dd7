package heapview

import (
	"fmt"
	"io"
	"strconv"
)

// labelWidth is the width of the label column of the table.
const labelWidth = 18

// WriteTable writes s as a table for people: the heap's figures, one a
// line, then one line per size class that saw any allocation.
func WriteTable(w io.Writer, s Snapshot) error {
	tw := &ErrWriter{W: w}
	st := s
	bytesLine := func(label string, n uint64, note string) {
		tw.Printf("  %-*s %10s %14d%s\n", labelWidth, label, Bytes(n), n, note)
	}
	countLine := func(label string, n uint64, note string) {
		tw.Printf("  %-*s %10s %14d%s\n", labelWidth, label, Count(n), n, note)
	}
	tw.Printf("heap\n")
	bytesLine("reserved", st.Reserved, "")
	bytesLine("grown", st.HeapSys, "")
	bytesLine("in use", st.HeapInuse, "  in spans")
	bytesLine("idle", st.HeapIdle, "  grown, not in spans")
	bytesLine("released", st.HeapReleased, "  idle, returned to the kernel")
	bytesLine("committed", st.Committed, "  grown - released")
	if st.MemoryLimit == 0 {
		tw.Printf("  %-*s %10s\n", labelWidth, "memory limit", "none")
	} else {
		bytesLine("memory limit", st.MemoryLimit,
			fmt.Sprintf("  %s committed", Percent(float64(st.Committed)/float64(st.MemoryLimit))))
	}
	if s.RSSKnown {
		bytesLine("resident (RSS)", s.RSS, "  of the reservation, /proc/self/smaps")
	} else {
		tw.Printf("  %-*s %10s\n", labelWidth, "resident (RSS)", "unknown")
	}
	bytesLine("metadata", st.Metadata, "  off-heap, touched and not released")
	countLine("live objects", st.HeapObjects, "")
	bytesLine("live bytes", st.HeapAlloc, "")
	countLine("large objects", st.LargeObjects, "  "+Bytes(st.LargeAlloc))
	countLine("regions", st.Regions, "  "+Bytes(st.RegionInuse)+" in spans")
	tw.Printf("  %-*s %10s %14s  1 - live/in use (regions left out)\n", labelWidth, "fragmentation", Percent(s.Fragmentation), "")
	o := st.SpanOccupancy
	tw.Printf("  %-*s <25%%: %d  25-50%%: %d  50-75%%: %d  75%%+: %d  full: %d  cached: %d\n", labelWidth, "span occupancy",
		o.Under25, o.P25to50, o.P50to75, o.P75Plus, o.Full, st.SpansCached)
	bytesLine("sparse spans", st.SparseSpanBytes, "  held by central spans under 25 % full")
	bytesLine("largest free run", st.LargestFreeRun, "")
	countLine("mallocs", st.Mallocs, "")
	countLine("frees", st.Frees, "")
	bytesLine("scavenged", st.ScavengeReleased, "  returned to the kernel, ever")
	bytesLine("recommitted", st.ScavengeRecommitted, "  taken by spans from released or fresh pages")
	countLine("release calls", st.ScavengeReleaseCalls, "  madvise calls by scavenging"+meanRelease(st.ScavengeReleased, st.ScavengeReleaseCalls))
	countLine("scavenge failures", st.ScavengeFailures, "")
	bytesLine("free committed", st.ScavengeFreeCommitted, "  free pages not yet released")
	bytesLine("scavenge goal", st.ScavengeGoal, "  free bytes kept committed now")
	countLine("scavenge cycles", st.ScavengeCycles, "  background, in "+st.ScavengeTime.String())

	if len(s.Classes) == 0 {
		tw.Printf("\nsize classes: no allocations\n")
		return tw.Err
	}
	tw.Printf("\nsize classes with activity\n")
	tw.Printf("  %5s %7s %10s %7s %8s %6s %12s %12s\n",
		"class", "size", "objects", "spans", "span", "util", "mallocs", "frees")
	for _, c := range s.Classes {
		span, util := "-", "-"
		if c.SpanBytes > 0 {
			span = Bytes(c.SpanBytes)
			if c.Spans > 0 {
				util = strconv.FormatFloat(100*c.Utilisation, 'f', 1, 64)
			}
		}
		tw.Printf("  %5d %7d %10d %7d %8s %6s %12d %12d\n",
			c.Class, c.Size, c.Objects, c.Spans, span, util, c.Mallocs, c.Frees)
	}
	return tw.Err
}

// meanRelease is the note on the release-call line: the mean bytes a
// call released, small when scattered live objects leave short free runs.
func meanRelease(released, calls uint64) string {
	if calls == 0 {
		return ""
	}
	return ", " + Bytes(released/calls) + " each"
}

// ErrWriter remembers the first write error so renderers can print freely
// and check once, in Err.
type ErrWriter struct {
	W   io.Writer
	Err error
}

// Printf writes unless an earlier write failed.
func (e *ErrWriter) Printf(format string, args ...any) {
	if e.Err == nil {
		_, e.Err = fmt.Fprintf(e.W, format, args...)
	}
}
