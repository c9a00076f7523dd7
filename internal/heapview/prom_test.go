package heapview

import (
	"bufio"
	"bytes"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var (
	metricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelName  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	// sampleLine: name, optional {labels}, one space, value (no timestamp).
	sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$`)
	labelPair  = regexp.MustCompile(`^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"(,|$)`)
)

// checkExposition checks text against the rules of the Prometheus text
// format, version 0.0.4: HELP and TYPE at most once per metric and before
// its samples, known types, each family's samples contiguous, valid names,
// label syntax and escapes, parseable values, counters non-negative and
// named _total, no duplicate series, a final newline.
func checkExposition(t *testing.T, text string) (families map[string]string) {
	t.Helper()
	if !strings.HasSuffix(text, "\n") {
		t.Fatal("exposition does not end in a newline")
	}
	families = map[string]string{} // name -> type
	help := map[string]bool{}
	done := map[string]bool{} // families whose group has ended
	seen := map[string]bool{} // name+labels
	current := ""
	sc := bufio.NewScanner(strings.NewReader(text))
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		fail := func(format string, args ...any) {
			t.Helper()
			t.Errorf("line %d %q: "+format, append([]any{n, line}, args...)...)
		}
		switch {
		case strings.HasPrefix(line, "# HELP "), strings.HasPrefix(line, "# TYPE "):
			f := strings.SplitN(line[7:], " ", 2)
			if len(f) != 2 || !metricName.MatchString(f[0]) {
				fail("bad metadata line")
				continue
			}
			name := f[0]
			if done[name] || (current != name && families[name] != "") {
				fail("metadata after the family's samples")
			}
			if line[2] == 'H' {
				if help[name] {
					fail("second HELP")
				}
				help[name] = true
				if strings.Contains(strings.ReplaceAll(f[1], `\\`, ""), `\`+"\"") {
					fail("HELP escapes a quote")
				}
			} else {
				if families[name] != "" {
					fail("second TYPE")
				}
				switch f[1] {
				case "counter", "gauge", "histogram", "summary", "untyped":
				default:
					fail("unknown type %q", f[1])
				}
				families[name] = f[1]
			}
			if current != name && current != "" {
				done[current] = true
			}
			current = name
		case strings.HasPrefix(line, "#"), line == "":
			fail("stray comment or blank line")
		default:
			m := sampleLine.FindStringSubmatch(line)
			if m == nil {
				fail("not a sample line")
				continue
			}
			name, labels, value := m[1], m[3], m[4]
			if name != current {
				fail("sample outside its family's group (current %q)", current)
			}
			if done[name] {
				fail("family %s split", name)
			}
			for rest := labels; rest != ""; {
				lm := labelPair.FindStringSubmatch(rest)
				if lm == nil {
					fail("bad labels at %q", rest)
					break
				}
				if !labelName.MatchString(lm[1]) || strings.HasPrefix(lm[1], "__") {
					fail("bad label name %q", lm[1])
				}
				rest = rest[len(lm[0]):]
			}
			key := name + "{" + labels + "}"
			if seen[key] {
				fail("duplicate series")
			}
			seen[key] = true
			v, err := strconv.ParseFloat(value, 64)
			if err != nil && value != "NaN" && value != "+Inf" && value != "-Inf" {
				fail("bad value")
			}
			if families[name] == "counter" {
				if v < 0 || math.IsNaN(v) {
					fail("counter value %v", v)
				}
				if !strings.HasSuffix(name, "_total") {
					fail("counter not named _total")
				}
			}
		}
	}
	for name := range families {
		if !help[name] {
			t.Errorf("%s has TYPE but no HELP", name)
		}
	}
	return families
}

func TestPromFormat(t *testing.T) {
	s := fixed()
	var b bytes.Buffer
	two := []Series{
		{Labels: []Label{{"phase", "peak"}}, Snap: s},
		{Labels: []Label{{"phase", `odd "quoted" \ value` + "\n"}}, Snap: Snapshot{}},
	}
	if err := WriteProm(&b, two...); err != nil {
		t.Fatal(err)
	}
	fams := checkExposition(t, b.String())
	for name, typ := range map[string]string{
		"offheap_heap_inuse_bytes":              "gauge",
		"offheap_heap_released_bytes":           "gauge",
		"offheap_class_objects":                 "gauge",
		"offheap_mallocs_total":                 "counter",
		"offheap_frees_total":                   "counter",
		"offheap_scavenge_released_bytes_total": "counter",
		"offheap_resident_bytes":                "gauge",
	} {
		if fams[name] != typ {
			t.Errorf("family %s has type %q, want %q", name, fams[name], typ)
		}
	}
	for _, want := range []string{
		`offheap_class_objects{phase="peak",size="8"} 1000`,
		`offheap_heap_inuse_bytes{phase="odd \"quoted\" \\ value\n"} 0`,
		`offheap_class_utilisation_ratio{phase="peak",size="8"} 0.9765625`,
	} {
		if !strings.Contains(b.String(), want+"\n") {
			t.Errorf("missing %q", want)
		}
	}
	// A snapshot without RSS has no resident sample, not a zero one.
	if strings.Contains(b.String(), `offheap_resident_bytes{phase="odd`) {
		t.Error("resident bytes sample for a snapshot without RSS")
	}
}

func TestPromGoldenIsValid(t *testing.T) {
	var b bytes.Buffer
	WriteProm(&b, Series{Snap: fixed()})
	checkExposition(t, b.String())
}

func TestPromEmpty(t *testing.T) {
	var b bytes.Buffer
	if err := WriteProm(&b); err != nil || b.Len() != 0 {
		t.Fatalf("no series: %q, %v", b.String(), err)
	}
}

func TestPromValues(t *testing.T) {
	for v, want := range map[float64]string{
		0: "0", 3: "3", 0.25: "0.25", math.NaN(): "NaN", math.Inf(1): "+Inf", math.Inf(-1): "-Inf", 1e300: "1e+300",
	} {
		if got := string(appendValue(nil, v)); got != want {
			t.Errorf("appendValue(%v) = %q, want %q", v, got, want)
		}
	}
}
