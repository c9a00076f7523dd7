package heapview

import (
	"io"
	"math"
	"strconv"
	"strings"
)

// PromContentType is the content type of the Prometheus text exposition
// format that WriteProm writes.
const PromContentType = "text/plain; version=0.0.4; charset=utf-8"

// promPrefix starts every metric name.
const promPrefix = "offheap_"

// Label is one Prometheus label.
type Label struct{ Name, Value string }

// Series is a snapshot with the labels that tell it apart from others in
// one exposition (for example heap="cache" or phase="peak").
type Series struct {
	Labels []Label
	Snap   Snapshot
}

// sample is one value of a family for one snapshot; extra is a label of
// the sample itself (the size of a class), or empty.
type sample struct {
	extra Label
	value float64
	exact uint64 // the value when isInt: counters past 2^53 stay exact
	isInt bool
}

func intSample(v uint64) sample { return sample{value: float64(v), exact: v, isInt: true} }

// family is one metric: its name without prefix, help, type, and how to
// read its samples from a snapshot.
type family struct {
	name, help, typ string
	samples         func(s *Snapshot) []sample
}

func gauge(name, help string, f func(s *Snapshot) uint64) family {
	return family{name, help, "gauge", func(s *Snapshot) []sample { return []sample{intSample(f(s))} }}
}

func counter(name, help string, f func(s *Snapshot) uint64) family {
	return family{name, help, "counter", func(s *Snapshot) []sample { return []sample{intSample(f(s))} }}
}

// bucket is one sample of span_occupancy_spans, labelled by its bucket.
func bucket(name string, n uint64) sample {
	smp := intSample(n)
	smp.extra = Label{"bucket", name}
	return smp
}

// perClass makes a family with one sample per size class with activity,
// labelled by the class's object size; keep filters the classes.
func perClass(name, help, typ string, keep func(c *ClassView) bool, f func(c *ClassView) sample) family {
	return family{name, help, typ, func(s *Snapshot) []sample {
		var out []sample
		for i := range s.Classes {
			c := &s.Classes[i]
			if keep == nil || keep(c) {
				smp := f(c)
				smp.extra = Label{"size", strconv.FormatUint(c.Size, 10)}
				out = append(out, smp)
			}
		}
		return out
	}}
}

var promFamilies = []family{
	gauge("reserved_bytes", "Address space reserved by the heap.", func(s *Snapshot) uint64 { return s.Reserved }),
	gauge("heap_sys_bytes", "Bytes of the reservation grown into (made readable and writable).", func(s *Snapshot) uint64 { return s.HeapSys }),
	gauge("heap_inuse_bytes", "Bytes in spans, including free slots of small-object spans.", func(s *Snapshot) uint64 { return s.HeapInuse }),
	gauge("heap_idle_bytes", "Grown bytes not in spans.", func(s *Snapshot) uint64 { return s.HeapIdle }),
	gauge("heap_released_bytes", "Idle bytes returned to the kernel.", func(s *Snapshot) uint64 { return s.HeapReleased }),
	gauge("heap_alloc_bytes", "Bytes of live objects, by class size.", func(s *Snapshot) uint64 { return s.HeapAlloc }),
	gauge("heap_objects", "Live objects.", func(s *Snapshot) uint64 { return s.HeapObjects }),
	gauge("large_objects", "Live objects larger than 32 KiB.", func(s *Snapshot) uint64 { return s.LargeObjects }),
	gauge("large_alloc_bytes", "Bytes of live large objects (whole pages).", func(s *Snapshot) uint64 { return s.LargeAlloc }),
	gauge("metadata_bytes", "Off-heap metadata bytes touched.", func(s *Snapshot) uint64 { return s.Metadata }),
	gauge("regions", "Live regions.", func(s *Snapshot) uint64 { return s.Regions }),
	gauge("region_inuse_bytes", "Bytes in spans held by regions.", func(s *Snapshot) uint64 { return s.RegionInuse }),
	gauge("largest_free_run_bytes", "Longest run of free grown pages.", func(s *Snapshot) uint64 { return s.LargestFreeRun }),
	gauge("memory_limit_bytes", "Configured limit on committed bytes; 0 for none.", func(s *Snapshot) uint64 { return s.MemoryLimit }),
	gauge("committed_bytes", "Bytes counted against the memory limit: grown minus released.", func(s *Snapshot) uint64 { return s.Committed }),
	{"resident_bytes", "Resident bytes of the heap's reservation, from /proc/self/smaps.", "gauge", func(s *Snapshot) []sample {
		if !s.RSSKnown {
			return nil
		}
		return []sample{intSample(s.RSS)}
	}},
	{"fragmentation_ratio", "1 - live bytes / in-use bytes.", "gauge", func(s *Snapshot) []sample {
		return []sample{{value: s.Fragmentation}}
	}},
	counter("mallocs_total", "Allocations ever.", func(s *Snapshot) uint64 { return s.Mallocs }),
	counter("frees_total", "Frees ever.", func(s *Snapshot) uint64 { return s.Frees }),
	counter("scavenge_released_bytes_total", "Bytes ever returned to the kernel by scavenging.", func(s *Snapshot) uint64 { return s.ScavengeReleased }),
	counter("scavenge_release_calls_total", "Madvise calls made by scavenging to release memory.", func(s *Snapshot) uint64 { return s.ScavengeReleaseCalls }),
	gauge("scavenge_free_committed_bytes", "Free bytes still backed by memory, which the scavenger can release.", func(s *Snapshot) uint64 { return s.ScavengeFreeCommitted }),
	counter("scavenge_failures_total", "Scavenging madvise calls that failed.", func(s *Snapshot) uint64 { return s.ScavengeFailures }),
	counter("scavenge_recommitted_bytes_total", "Bytes ever taken by spans from pages with no physical memory (released earlier or freshly grown).", func(s *Snapshot) uint64 { return s.ScavengeRecommitted }),
	gauge("scavenge_goal_bytes", "Free bytes the background scavenger keeps committed now.", func(s *Snapshot) uint64 { return s.ScavengeGoal }),
	counter("scavenge_cycles_total", "Background scavenger cycles finished.", func(s *Snapshot) uint64 { return s.ScavengeCycles }),
	{"scavenge_seconds_total", "Wall time the background scavenger spent releasing memory.", "counter", func(s *Snapshot) []sample {
		return []sample{{value: s.ScavengeTime.Seconds()}}
	}},
	{"span_occupancy_spans", "Small-object spans on the central lists, by how full they were when last listed (bucket: under25, 25to50, 50to75, 75plus, full).", "gauge", func(s *Snapshot) []sample {
		o := s.SpanOccupancy
		return []sample{bucket("under25", o.Under25), bucket("25to50", o.P25to50), bucket("50to75", o.P50to75),
			bucket("75plus", o.P75Plus), bucket("full", o.Full)}
	}},
	gauge("spans_cached", "Small-object spans owned by caches, whose fill is private to the owner.", func(s *Snapshot) uint64 { return s.SpansCached }),
	gauge("sparse_span_bytes", "Bytes of central spans under 25 % full.", func(s *Snapshot) uint64 { return s.SparseSpanBytes }),
	perClass("class_objects", "Live objects of a size class.", "gauge", nil, func(c *ClassView) sample { return intSample(c.Objects) }),
	perClass("class_spans", "Spans of a size class in use.", "gauge", nil, func(c *ClassView) sample { return intSample(c.Spans) }),
	perClass("class_utilisation_ratio", "Live bytes of a size class over the bytes of its spans.", "gauge",
		func(c *ClassView) bool { return c.SpanBytes > 0 }, func(c *ClassView) sample { return sample{value: c.Utilisation} }),
	perClass("class_mallocs_total", "Allocations ever, per size class.", "counter", nil, func(c *ClassView) sample { return intSample(c.Mallocs) }),
	perClass("class_frees_total", "Frees ever, per size class.", "counter", nil, func(c *ClassView) sample { return intSample(c.Frees) }),
}

// WriteProm writes the series in the Prometheus text exposition format
// (version 0.0.4): for each metric a # HELP and a # TYPE line, then its
// samples, all series together, so every family is one contiguous group.
// Families with no samples are left out.
func WriteProm(w io.Writer, series ...Series) error {
	ew := &ErrWriter{W: w}
	var b []byte
	for _, f := range promFamilies {
		b = b[:0]
		for i := range series {
			for _, smp := range f.samples(&series[i].Snap) {
				b = append(b, promPrefix+f.name...)
				b = appendLabels(b, series[i].Labels, smp.extra)
				b = append(b, ' ')
				if smp.isInt {
					b = strconv.AppendUint(b, smp.exact, 10)
				} else {
					b = appendValue(b, smp.value)
				}
				b = append(b, '\n')
			}
		}
		if len(b) == 0 {
			continue
		}
		ew.Printf("# HELP %s%s %s\n# TYPE %s%s %s\n%s",
			promPrefix, f.name, escapeHelp(f.help), promPrefix, f.name, f.typ, b)
	}
	return ew.Err
}

func appendLabels(b []byte, ls []Label, extra Label) []byte {
	if len(ls) == 0 && extra.Name == "" {
		return b
	}
	b = append(b, '{')
	n := 0
	add := func(l Label) {
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = append(b, l.Name...)
		b = append(b, '=', '"')
		b = append(b, escapeLabel(l.Value)...)
		b = append(b, '"')
	}
	for _, l := range ls {
		add(l)
	}
	if extra.Name != "" {
		add(extra)
	}
	return append(b, '}')
}

// appendValue formats a sample value: integers exactly, other numbers in
// the shortest form that reads back the same, and the special values as
// the format spells them.
func appendValue(b []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(b, "NaN"...)
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	case v == math.Trunc(v) && math.Abs(v) < 1<<53:
		return strconv.AppendInt(b, int64(v), 10)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

func escapeHelp(s string) string  { return helpEscaper.Replace(s) }
func escapeLabel(s string) string { return labelEscaper.Replace(s) }
