package bench

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// Native allocator names: the C driver under LD_PRELOAD (glibc: nothing
// preloaded).
const (
	NameGlibc    = "glibc"
	NameTcmalloc = "tcmalloc"
	NameJemalloc = "jemalloc"
	NameMimalloc = "mimalloc"
)

// NativeNames lists the native allocators, in column order.
func NativeNames() []string { return []string{NameGlibc, NameTcmalloc, NameJemalloc, NameMimalloc} }

// Row is one line of the report: one workload at one thread count.
type Row struct {
	Workload string `json:"workload"`
	Threads  int    `json:"threads"`
	Unit     Unit   `json:"unit"`
	// Values holds each allocator's figure in Unit.
	Values map[string]float64 `json:"values"`
	// BestNative is the fastest native allocator of the row, "" if none ran.
	BestNative string `json:"best_native,omitempty"`
	// Ratios are offheap's speed relative to the Go heap and to the best
	// native allocator (throughput ÷ throughput: above 1, offheap is
	// faster), keyed "offheap-heap/go" and so on. In UnitScaling rows
	// they compare scaling instead: the other's t/t1 ÷ offheap's (above
	// 1, offheap scales better), and the best native allocator is the
	// one that scales best.
	Ratios map[string]float64 `json:"ratios"`
	// GoGC is the Go heap run's GC CPU seconds and cycles.
	GoGCCPUSeconds float64 `json:"go_gc_cpu_seconds,omitempty"`
	GoGCCycles     uint64  `json:"go_gc_cycles,omitempty"`
}

// Rows arranges results into report rows, in the order of workloads and
// then thread count.
func Rows(results []Result, workloads []Workload) []Row {
	units := map[string]Unit{}
	order := map[string]int{}
	for i, w := range workloads {
		units[w.Name] = w.Unit
		order[w.Name] = i
	}
	type key struct {
		w string
		t int
	}
	byKey := map[key][]Result{}
	oneThread := map[[2]string]Result{}
	var keys []key
	for _, r := range results {
		if r.Error != "" || r.Ops == 0 || r.Seconds <= 0 {
			continue // nothing to divide by; the error is reported apart
		}
		k := key{r.Workload, r.Threads}
		if _, ok := byKey[k]; !ok {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], r)
		if r.Threads == 1 {
			oneThread[[2]string{r.Workload, r.Alloc}] = r
		}
	}
	slices.SortStableFunc(keys, func(a, b key) int {
		if c := order[a.w] - order[b.w]; c != 0 {
			return c
		}
		return a.t - b.t
	})
	var rows []Row
	for _, k := range keys {
		row := Row{Workload: k.w, Threads: k.t, Unit: units[k.w], Values: map[string]float64{}, Ratios: map[string]float64{}}
		speed := map[string]float64{}
		for _, r := range byKey[k] {
			speed[r.Alloc] = r.OpsPerSec()
			switch row.Unit {
			case UnitPair:
				row.Values[r.Alloc] = r.Seconds * float64(r.Threads) / float64(r.Ops) * 1e9
			case UnitScaling:
				if one, ok := oneThread[[2]string{r.Workload, r.Alloc}]; ok && one.Seconds > 0 {
					row.Values[r.Alloc] = r.Seconds / one.Seconds
				}
			default:
				row.Values[r.Alloc] = r.OpsPerSec() / 1e6
			}
			if r.Alloc == NameGo {
				row.GoGCCPUSeconds, row.GoGCCycles = r.GCCPUSeconds, r.GCCycles
			}
		}
		if row.Unit == UnitScaling && row.Threads == 1 {
			rows = append(rows, row) // t/t1 is 1 for all: nothing to compare
			continue
		}
		// Scaling rows compare how each allocator scales (its t/t1), not
		// its speed: the fixed work there is mostly the shape's write
		// loop, which Go and C compile differently.
		if row.Unit == UnitScaling {
			for a := range speed {
				if v, ok := row.Values[a]; ok && v > 0 {
					speed[a] = 1 / v
				} else {
					delete(speed, a)
				}
			}
		}
		for _, n := range NativeNames() {
			if s, ok := speed[n]; ok && (row.BestNative == "" || s > speed[row.BestNative]) {
				row.BestNative = n
			}
		}
		for _, oh := range []string{NameHeap, NameCache} {
			s, ok := speed[oh]
			if !ok {
				continue
			}
			for _, other := range []string{NameGo, row.BestNative} {
				if o := speed[other]; other != "" && o > 0 {
					row.Ratios[oh+"/"+ratioName(other)] = s / o
				}
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// ratioName keys the best native allocator's ratio as "best", so the
// columns line up whichever allocator won the row.
func ratioName(other string) string {
	if other == NameGo {
		return NameGo
	}
	return "best"
}

// RatioColumns are the ratio keys of Row.Ratios, in column order.
func RatioColumns() []string {
	return []string{NameHeap + "/go", NameHeap + "/best", NameCache + "/go", NameCache + "/best"}
}

// WriteTable writes rows as one Markdown table: a column per allocator in
// allocs order, then the offheap ratios, the best native allocator and
// the Go heap's GC work.
func WriteTable(w io.Writer, rows []Row, allocs []string) error {
	head := append([]string{"workload", "threads", "unit"}, allocs...)
	short := map[string]string{
		NameHeap + "/go": "heap÷go", NameHeap + "/best": "heap÷best",
		NameCache + "/go": "cache÷go", NameCache + "/best": "cache÷best",
	}
	var ratios []string // only for the offheap allocators shown
	for _, c := range RatioColumns() {
		if oh, _, _ := strings.Cut(c, "/"); slices.Contains(allocs, oh) {
			ratios = append(ratios, c)
			head = append(head, short[c])
		}
	}
	head = append(head, "best native", "go GC s/cycles")
	table := [][]string{head}
	for _, r := range rows {
		line := []string{r.Workload, fmt.Sprint(r.Threads), string(r.Unit)}
		for _, a := range allocs {
			line = append(line, formatValue(r.Values, a))
		}
		for _, c := range ratios {
			if v, ok := r.Ratios[c]; ok {
				line = append(line, fmt.Sprintf("%.2f×", v))
			} else {
				line = append(line, "—")
			}
		}
		best, gc := "—", "—"
		if r.BestNative != "" {
			best = r.BestNative
		}
		if _, ok := r.Values[NameGo]; ok {
			gc = fmt.Sprintf("%.3f/%d", r.GoGCCPUSeconds, r.GoGCCycles)
		}
		table = append(table, append(line, best, gc))
	}
	return writeMarkdown(w, table)
}

func formatValue(values map[string]float64, alloc string) string {
	v, ok := values[alloc]
	switch {
	case !ok:
		return "—"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// writeMarkdown pads every column to its widest cell (counted in runes,
// so × and — line up) and writes a Markdown table.
func writeMarkdown(w io.Writer, table [][]string) error {
	width := make([]int, len(table[0]))
	for _, line := range table {
		for i, c := range line {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	row := func(cells []string) {
		b.WriteString("|")
		for i, c := range cells {
			pad := width[i] - len([]rune(c))
			if i >= 3 { // figures right-aligned
				fmt.Fprintf(&b, " %s%s |", strings.Repeat(" ", pad), c)
			} else {
				fmt.Fprintf(&b, " %s%s |", c, strings.Repeat(" ", pad))
			}
		}
		b.WriteString("\n")
	}
	row(table[0])
	sep := make([]string, len(width))
	for i := range sep {
		sep[i] = strings.Repeat("-", width[i])
		if i >= 3 {
			sep[i] = strings.Repeat("-", width[i]-1) + ":"
		}
	}
	row(sep)
	for _, line := range table[1:] {
		row(line)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
