package main

import (
	"bytes"
	"math"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"syscall"
	"time"
)

// infoWriter builds an INFO reply in Redis's format: "# Section" lines and
// "field:value" lines, CRLF-terminated.
type infoWriter struct{ b bytes.Buffer }

func (w *infoWriter) section(name string) {
	if w.b.Len() > 0 {
		w.b.WriteString("\r\n")
	}
	w.b.WriteString("# ")
	w.b.WriteString(name)
	w.b.WriteString("\r\n")
}

func (w *infoWriter) str(k, v string) {
	w.b.WriteString(k)
	w.b.WriteByte(':')
	w.b.WriteString(v)
	w.b.WriteString("\r\n")
}

func (w *infoWriter) int(k string, v int)           { w.str(k, strconv.Itoa(v)) }
func (w *infoWriter) u64(k string, v uint64)        { w.str(k, strconv.FormatUint(v, 10)) }
func (w *infoWriter) f64(k string, v float64)       { w.str(k, strconv.FormatFloat(v, 'f', 6, 64)) }
func (w *infoWriter) dur(k string, d time.Duration) { w.f64(k, d.Seconds()) }

// runtimeMetricNames are the runtime/metrics samples INFO reports. All
// are read with one metrics.Read, which does not stop the world (unlike
// runtime.ReadMemStats), so INFO never stalls other clients.
func runtimeMetricNames() []string {
	return []string{
		"/cpu/classes/gc/total:cpu-seconds",
		"/cpu/classes/gc/mark/idle:cpu-seconds",
		"/cpu/classes/total:cpu-seconds",
		"/gc/cycles/total:gc-cycles",
		"/sched/pauses/total/gc:seconds",
		"/memory/classes/heap/objects:bytes",
		"/memory/classes/heap/free:bytes",
		"/memory/classes/heap/released:bytes",
		"/memory/classes/total:bytes",
		"/gc/heap/live:bytes",
		"/gc/heap/goal:bytes",
		"/gc/heap/objects:objects",
		"/gc/heap/allocs:bytes",
		"/gc/heap/allocs:objects",
		"/gc/gogc:percent",
		"/gc/gomemlimit:bytes",
	}
}

// writeProcessInfo appends the process and Go runtime sections.
func writeProcessInfo(w *infoWriter, started time.Time) {
	w.section("Server")
	w.str("go_version", runtime.Version())
	w.int("process_id", os.Getpid())
	w.int("gomaxprocs", runtime.GOMAXPROCS(0))
	w.f64("uptime_seconds", time.Since(started).Seconds())

	w.section("Process")
	rss, hwm := processRSS()
	w.u64("used_memory_rss", rss)
	w.u64("used_memory_peak_rss", hwm)
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		w.f64("used_cpu_user", tvSeconds(ru.Utime))
		w.f64("used_cpu_sys", tvSeconds(ru.Stime))
	}

	names := runtimeMetricNames()
	samples := make([]metrics.Sample, len(names))
	for i, n := range names {
		samples[i].Name = n
	}
	metrics.Read(samples)
	w.section("GoRuntime")
	for _, s := range samples {
		switch s.Value.Kind() {
		case metrics.KindUint64:
			w.u64(metricField(s.Name), s.Value.Uint64())
		case metrics.KindFloat64:
			w.f64(metricField(s.Name), s.Value.Float64())
		case metrics.KindFloat64Histogram:
			h := s.Value.Float64Histogram()
			p50, p99, max, n := histQuantiles(h)
			f := metricField(s.Name)
			w.u64(f+"_count", n)
			w.f64(f+"_p50", p50)
			w.f64(f+"_p99", p99)
			w.f64(f+"_max", max)
		}
	}
}

// metricField turns "/cpu/classes/gc/total:cpu-seconds" into
// "go_cpu_classes_gc_total_cpu_seconds".
func metricField(name string) string {
	b := []byte("go")
	for _, c := range []byte(name) {
		switch c {
		case '/', ':', '-':
			c = '_'
		}
		b = append(b, c)
	}
	return string(b)
}

// histQuantiles reads p50, p99 and max from a runtime histogram. A
// quantile is reported as the upper edge of the bucket it falls in (so it
// is an upper bound), max as the upper edge of the highest non-empty
// bucket, or its lower edge if the upper one is +Inf.
func histQuantiles(h *metrics.Float64Histogram) (p50, p99, max float64, n uint64) {
	for _, c := range h.Counts {
		n += c
	}
	if n == 0 {
		return 0, 0, 0, 0
	}
	edge := func(i int) float64 {
		if up := h.Buckets[i+1]; !math.IsInf(up, 1) {
			return up
		}
		return h.Buckets[i]
	}
	q := func(frac float64) float64 {
		want := uint64(math.Ceil(frac * float64(n)))
		var seen uint64
		for i, c := range h.Counts {
			seen += c
			if seen >= want && c > 0 {
				return edge(i)
			}
		}
		return edge(len(h.Counts) - 1)
	}
	for i := len(h.Counts) - 1; i >= 0; i-- {
		if h.Counts[i] > 0 {
			max = edge(i)
			break
		}
	}
	return q(0.50), q(0.99), max, n
}

func tvSeconds(tv syscall.Timeval) float64 {
	return float64(tv.Sec) + float64(tv.Usec)/1e6
}

// processRSS returns the resident set now (/proc/self/statm, field 2) and
// its peak (VmHWM in /proc/self/status), in bytes; 0 where unreadable.
func processRSS() (rss, hwm uint64) {
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		f := bytes.Fields(b)
		if len(f) > 1 {
			pages, _ := strconv.ParseUint(string(f[1]), 10, 64)
			rss = pages * uint64(os.Getpagesize())
		}
	}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range bytes.Split(b, []byte("\n")) {
			if v, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
				f := bytes.Fields(v) // "123456 kB"
				if len(f) > 0 {
					kb, _ := strconv.ParseUint(string(f[0]), 10, 64)
					hwm = kb << 10
				}
			}
		}
	}
	return rss, hwm
}
