package main

import (
	"bytes"
	"encoding/json"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/offheap/offheap/arena"
	"github.com/offheap/offheap/arena/arenahttp"
)

// The end-to-end tests build arenastat once and run it as a user would.

var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "arenastat-e2e"); buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "arenastat")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = &buildError{err, out}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

type buildError struct {
	err error
	out []byte
}

func (e *buildError) Error() string { return e.err.Error() + ": " + string(e.out) }

// result is one run of the binary.
type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return r
}

// ok runs the binary and wants success with nothing on stderr.
func ok(t *testing.T, args ...string) string {
	t.Helper()
	r := run(t, args...)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("arenastat %q: exit %d, stderr %q", args, r.code, r.stderr)
	}
	return r.stdout
}

func TestE2EDefaultRun(t *testing.T) {
	// No command: the default workload; flags shorten it.
	out := ok(t, "-duration", "300ms")
	for _, want := range []string{"workload mixed", "live objects", "fragmentation", "resident (RSS)", "size classes with activity"} {
		if !strings.Contains(out, want) {
			t.Errorf("default report lacks %q:\n%s", want, out)
		}
	}
}

func TestE2ERunFormats(t *testing.T) {
	var rep Report
	if err := json.Unmarshal([]byte(ok(t, "run", "-workload", "growshrink", "-duration", "300ms", "-format", "json")), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Phases) != 3 || rep.Phases[2].Snapshot.Committed >= rep.Phases[0].Snapshot.Committed {
		t.Fatalf("growshrink phases %+v", rep.Phases)
	}
	prom := ok(t, "run", "-workload", "small", "-duration", "200ms", "-goroutines", "2", "-memlimit", "64MiB", "-format", "prom")
	for _, want := range []string{"# TYPE offheap_mallocs_total counter\n", "offheap_memory_limit_bytes 67108864\n"} {
		if !strings.Contains(prom, want) {
			t.Errorf("prom output lacks %q", want)
		}
	}
	// Out of memory under a limit is reported, not fatal.
	rep = Report{}
	json.Unmarshal([]byte(ok(t, "run", "-workload", "growshrink", "-duration", "1s", "-memlimit", "16MiB", "-format", "json")), &rep)
	if rep.Summary == nil || rep.Summary.OOM == 0 {
		t.Fatalf("no OOM failures reported under a 16 MiB limit: %+v", rep.Summary)
	}
}

// TestE2EMassDelete runs massdelete at a tiny scale: its JSON has the
// curve, a sample right after the delete, one a second and one at the
// end, and the table prints the curve and the final heap report.
func TestE2EMassDelete(t *testing.T) {
	var rep Report
	if err := json.Unmarshal([]byte(ok(t, "run", "-workload", "massdelete", "-fill", "8MiB", "-duration", "1500ms", "-format", "json")), &rep); err != nil {
		t.Fatal(err)
	}
	checkMassDelete(t, &rep, 8<<20)
	if n := len(rep.Curve); n < 3 || rep.Curve[n-1].T < 1500*time.Millisecond {
		t.Fatalf("curve of %d samples over 1.5 s, last at %v", n, rep.Curve[n-1].T)
	}
	out := ok(t, "run", "-workload", "massdelete", "-fill", "4MiB", "-duration", "200ms")
	for _, want := range []string{"filled 4.0 MiB", "use/live", "== after deleting 90 % ==", "== after churn ==", "size classes with activity"} {
		if !strings.Contains(out, want) {
			t.Errorf("massdelete table lacks %q:\n%s", want, out)
		}
	}
}

func TestE2EReplay(t *testing.T) {
	for _, name := range []string{"mixed.trace", "growshrink.trace"} {
		out := ok(t, "replay", filepath.Join("..", "..", "testdata", "traces", name))
		// With no -memlimit the limit is derived from the machine's
		// memory, and the report says so.
		if !strings.Contains(out, "replay of") || !strings.Contains(out, "== end of trace ==") ||
			!strings.Contains(out, "memory limit: ") || !strings.Contains(out, "-memlimit auto: ") {
			t.Errorf("replay %s:\n%s", name, out)
		}
	}
}

// liveServer serves a heap that a goroutine keeps allocating from and
// freeing to, until the test ends.
func liveServer(t *testing.T) string {
	h, err := arena.NewHeap(arena.Config{Reserve: 256 << 20})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/debug/offheap/", arenahttp.New(h))
	srv := httptest.NewServer(mux)
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		c := h.NewCache()
		defer c.Close()
		var ring [512]unsafe.Pointer
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			if p := ring[i%len(ring)]; p != nil {
				c.Free(p)
			}
			ring[i%len(ring)], _ = c.Alloc(16 + i%3000)
			if i%1024 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	t.Cleanup(func() {
		srv.Close()
		close(done)
		<-stopped
		h.Close()
	})
	// The tests read Mallocs: wait until the workload has allocated, or a
	// report taken first shows an idle heap (TestE2EAttach once failed so
	// with Mallocs == 0 on a loaded machine).
	for deadline := time.Now().Add(liveServerStart); h.Stats().Mallocs == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the live server's workload made no allocation in %s", liveServerStart)
		}
	}
	return srv.URL + "/debug/offheap/"
}

// liveServerStart bounds the wait for a live server's first allocation:
// far beyond the microseconds it takes, for a machine loaded by parallel
// test binaries and the race detector.
const liveServerStart = 10 * time.Second

func TestE2EAttach(t *testing.T) {
	url := liveServer(t)
	var rep Report
	if err := json.Unmarshal([]byte(ok(t, "attach", "-format", "json", url)), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Phases) != 1 || rep.Phases[0].Snapshot.Mallocs == 0 || !rep.Phases[0].Snapshot.RSSKnown {
		t.Fatalf("attach report %+v", rep)
	}
	out := ok(t, "attach", "-watch", "100ms", "-count", "2", url)
	if n := strings.Count(out, "== "); n != 2 {
		t.Fatalf("watch with -count 2 printed %d reports:\n%s", n, out)
	}
	if !strings.Contains(out, "allocs/s") || !strings.Contains(out, "released") {
		t.Fatalf("watch shows no rates:\n%s", out)
	}
	// JSON in watch mode: one document a line, the second with rates.
	lines := strings.Split(strings.TrimSpace(ok(t, "attach", "-watch", "50ms", "-count", "2", "-format", "json", url)), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d JSON lines, want 2", len(lines))
	}
	rep = Report{}
	if err := json.Unmarshal([]byte(lines[1]), &rep); err != nil || rep.Rates == nil || rep.Rates.AllocsPerSec <= 0 {
		t.Fatalf("second watch report: %v %+v", err, rep.Rates)
	}
	if prom := ok(t, "attach", "-format", "prom", url+"metrics"); !strings.Contains(prom, "offheap_heap_inuse_bytes ") {
		t.Fatalf("attach -format prom:\n%s", prom)
	}
}

func TestE2EMap(t *testing.T) {
	url := liveServer(t)
	out := ok(t, "map", url)
	if !strings.Contains(out, "page map of") || !strings.Contains(out, "% in use") {
		t.Fatalf("text map:\n%s", out)
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		png  string
		args []string
	}{
		{"live.png", []string{"map", "-o", filepath.Join(dir, "live.png"), url}},
		{"fresh.png", []string{"map", "-duration", "200ms", "-o", filepath.Join(dir, "fresh.png")}},
	} {
		args := tc.args
		if out := ok(t, args...); !strings.HasPrefix(out, "wrote ") {
			t.Errorf("%v: %q", args, out)
		}
		f, err := os.Open(filepath.Join(dir, tc.png))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		b := img.Bounds()
		if b.Dx() != 512*pngPageWidth || (b.Dy()+pngRowGap)%(pngRowHeight+pngRowGap) != 0 {
			t.Fatalf("%v: image %v", args, b)
		}
		colours := map[int]bool{}
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				colours[pngPalette.Index(img.At(x, y))] = true
			}
		}
		if !colours[pngInUse] {
			t.Errorf("%v: no page drawn in use: colours %v", args, colours)
		}
	}
}

func TestE2EBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.trace")
	os.WriteFile(bad, []byte("offheap-trace v1\na 1 16\nx 2\n"), 0o644)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"run", "-workload", "nope"}, 2, `unknown workload "nope" (valid: growshrink, massdelete, mixed, small)`},
		{[]string{"run", "-workload", "massdelete", "-fill", "0"}, 2, "-fill 0 out of range"},
		{[]string{"run", "-fill", "lots"}, 2, "bad byte count"},
		{[]string{"run", "-workload", "massdelete", "-turnover", "-5"}, 2, "-turnover -5 out of range"},
		{[]string{"replay", filepath.Join(dir, "missing.trace")}, 1, "no such file"},
		{[]string{"replay", bad}, 1, `line 3: unknown op "x"`},
		{[]string{"replay"}, 2, "want one trace file"},
		{[]string{"replay", "-memlimit", "1MiB", filepath.Join("..", "..", "testdata", "traces", "growshrink.trace")}, 1,
			"out of memory"},
		{[]string{"replay", bad, "-memlimit", "1GiB"}, 2, "flag -memlimit after the arguments"},
		{[]string{"attach", "http://127.0.0.1:1/debug/offheap/"}, 1, "connection refused"},
		{[]string{"attach"}, 2, "want one URL"},
		{[]string{"map", "127.0.0.1:1"}, 1, "connection refused"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"run", "-nope"}, 2, "flag provided but not defined"},
		{[]string{"run", "-memlimit", "lots"}, 2, "bad byte count"},
		{[]string{"run", "-duration", "-1s"}, 2, "-duration"},
		{[]string{"run", "-format", "xml"}, 2, "unknown format"},
		{[]string{"run", "extra"}, 2, "unexpected argument"},
	} {
		r := run(t, tc.args...)
		if r.code != tc.code {
			t.Errorf("%q: exit %d, want %d", tc.args, r.code, tc.code)
		}
		if strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
			t.Errorf("%q: stderr is not one line: %q", tc.args, r.stderr)
		}
		if !strings.Contains(r.stderr, tc.want) || (tc.want == "out of memory" && !strings.Contains(r.stderr, "memory limit 1.0 MiB (-memlimit)")) {
			t.Errorf("%q: stderr %q, want %q", tc.args, r.stderr, tc.want)
		}
		if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic") {
			t.Errorf("%q: stack trace on stderr: %q", tc.args, r.stderr)
		}
		if r.stdout != "" {
			t.Errorf("%q: stdout %q, want nothing", tc.args, r.stdout)
		}
	}
}

func TestE2EHelp(t *testing.T) {
	if out := ok(t, "help"); !strings.Contains(out, "usage: arenastat") || !strings.Contains(out, "growshrink") {
		t.Fatalf("help:\n%s", out)
	}
	if r := run(t, "run", "-h"); r.code != 0 || !strings.Contains(r.stderr, "-workload") {
		t.Fatalf("run -h: %+v", r)
	}
	for _, h := range []string{"-h", "--help"} {
		if out := ok(t, h); !strings.Contains(out, "usage: arenastat") || !strings.Contains(out, "attach") {
			t.Fatalf("%s:\n%s", h, out)
		}
	}
}
