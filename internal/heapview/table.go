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
	tw := &errWriter{w: w}
	st := s
	bytesLine := func(label string, n uint64, note string) {
		tw.printf("  %-*s %10s %14d%s\n", labelWidth, label, Bytes(n), n, note)
	}
	countLine := func(label string, n uint64, note string) {
		tw.printf("  %-*s %10s %14d%s\n", labelWidth, label, Count(n), n, note)
	}
	tw.printf("heap\n")
	bytesLine("reserved", st.Reserved, "")
	bytesLine("grown", st.HeapSys, "")
	bytesLine("in use", st.HeapInuse, "  in spans")
	bytesLine("idle", st.HeapIdle, "  grown, not in spans")
	bytesLine("released", st.HeapReleased, "  idle, returned to the kernel")
	bytesLine("committed", st.Committed, "  grown - released")
	if st.MemoryLimit == 0 {
		tw.printf("  %-*s %10s\n", labelWidth, "memory limit", "none")
	} else {
		bytesLine("memory limit", st.MemoryLimit,
			fmt.Sprintf("  %s committed", Percent(float64(st.Committed)/float64(st.MemoryLimit))))
	}
	if s.RSSKnown {
		bytesLine("resident (RSS)", s.RSS, "  of the reservation, /proc/self/smaps")
	} else {
		tw.printf("  %-*s %10s\n", labelWidth, "resident (RSS)", "unknown")
	}
	bytesLine("metadata", st.Metadata, "  off-heap, touched")
	countLine("live objects", st.HeapObjects, "")
	bytesLine("live bytes", st.HeapAlloc, "")
	countLine("large objects", st.LargeObjects, "  "+Bytes(st.LargeAlloc))
	countLine("regions", st.Regions, "  "+Bytes(st.RegionInuse)+" in spans")
	tw.printf("  %-*s %10s %14s  1 - live/in use (regions left out)\n", labelWidth, "fragmentation", Percent(s.Fragmentation), "")
	bytesLine("largest free run", st.LargestFreeRun, "")
	countLine("mallocs", st.Mallocs, "")
	countLine("frees", st.Frees, "")
	bytesLine("scavenged", st.ScavengeReleased, "  returned to the kernel, ever")
	bytesLine("recommitted", st.ScavengeRecommitted, "  taken by spans from released or fresh pages")
	countLine("scavenge failures", st.ScavengeFailures, "")
	bytesLine("scavenge goal", st.ScavengeGoal, "  free bytes kept committed now")
	countLine("scavenge cycles", st.ScavengeCycles, "  background, in "+st.ScavengeTime.String())

	if len(s.Classes) == 0 {
		tw.printf("\nsize classes: no allocations\n")
		return tw.err
	}
	tw.printf("\nsize classes with activity\n")
	tw.printf("  %5s %7s %10s %7s %8s %6s %12s %12s\n",
		"class", "size", "objects", "spans", "span", "util", "mallocs", "frees")
	for _, c := range s.Classes {
		span, util := "-", "-"
		if c.SpanBytes > 0 {
			span = Bytes(c.SpanBytes)
			if c.Spans > 0 {
				util = strconv.FormatFloat(100*c.Utilisation, 'f', 1, 64)
			}
		}
		tw.printf("  %5d %7d %10d %7d %8s %6s %12d %12d\n",
			c.Class, c.Size, c.Objects, c.Spans, span, util, c.Mallocs, c.Frees)
	}
	return tw.err
}

// errWriter remembers the first write error so the renderers can print
// freely and check once.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}
