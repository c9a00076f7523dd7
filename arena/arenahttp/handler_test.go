package arenahttp

import (
	"encoding/json"
	"expvar"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/offheap/offheap/arena"
	"github.com/offheap/offheap/internal/heapview"
)

const mount = "/debug/offheap/"

// liveHeap returns a heap holding 100 small and 2 large objects.
func liveHeap(t *testing.T) *arena.Heap {
	t.Helper()
	h, err := arena.NewHeap(arena.Config{Reserve: 64 << 20, MemoryLimit: 32 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	var ps []unsafe.Pointer
	for i := range 102 {
		size := 64
		if i >= 100 {
			size = 100 << 10
		}
		p, err := h.Alloc(size)
		if err != nil {
			t.Fatal(err)
		}
		// Written, so the pages are resident (RSS > 0): neither Alloc
		// of a fresh span nor Free touches the object's memory.
		*(*byte)(p) = 1
		ps = append(ps, p)
	}
	for _, p := range ps[:10] { // some frees too
		h.Free(p)
	}
	return h
}

func serve(t *testing.T, h http.Handler) *httptest.Server {
	mux := http.NewServeMux()
	mux.Handle(mount, h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// quietHeap returns an empty 64 MiB heap with no background scavenger,
// so the figures served change only with what the test does.
func quietHeap(t *testing.T) *arena.Heap {
	t.Helper()
	h, err := arena.NewHeap(arena.Config{Reserve: 64 << 20, ScavengeDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// getSnapshot fetches and decodes the JSON snapshot srv serves.
func getSnapshot(t *testing.T, srv *httptest.Server) heapview.Snapshot {
	t.Helper()
	_, body := get(t, srv.URL+mount)
	var s heapview.Snapshot
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSnapshotJSON(t *testing.T) {
	h := liveHeap(t)
	srv := serve(t, New(h))
	for _, u := range []string{mount, mount + "?format=json"} {
		resp, body := get(t, srv.URL+u)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != contentJSON {
			t.Fatalf("%s: %s %s", u, resp.Status, resp.Header.Get("Content-Type"))
		}
		var s heapview.Snapshot
		if err := json.Unmarshal([]byte(body), &s); err != nil {
			t.Fatal(err)
		}
		if s.HeapObjects != 92 || s.LargeObjects != 2 || s.Mallocs != 102 || s.Frees != 10 || s.MemoryLimit != 32<<20 {
			t.Errorf("%s: figures %+v", u, s.Figures)
		}
		if s.Time.IsZero() || !s.RSSKnown || s.RSS == 0 {
			t.Errorf("%s: time %v, rss %d known %v", u, s.Time, s.RSS, s.RSSKnown)
		}
		if s.Fragmentation <= 0 || s.Fragmentation >= 1 {
			t.Errorf("fragmentation %v", s.Fragmentation)
		}
		i := slices.IndexFunc(s.Classes, func(c heapview.ClassView) bool { return c.Size == 64 })
		if i < 0 || s.Classes[i].Objects != 90 || s.Classes[i].Utilisation <= 0 {
			t.Errorf("class 64: %+v", s.Classes)
		}
	}
}

var promSample = regexp.MustCompile(`^offheap_[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [0-9.e+-]+$`)

func TestSnapshotProm(t *testing.T) {
	srv := serve(t, New(liveHeap(t)))
	for _, u := range []string{mount + "?format=prom", mount + "metrics"} {
		resp, body := get(t, srv.URL+u)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != heapview.PromContentType {
			t.Fatalf("%s: %s %s", u, resp.Status, resp.Header.Get("Content-Type"))
		}
		for _, line := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
			if !strings.HasPrefix(line, "# HELP offheap_") && !strings.HasPrefix(line, "# TYPE offheap_") && !promSample.MatchString(line) {
				t.Errorf("%s: bad line %q", u, line)
			}
		}
		for _, want := range []string{
			"# TYPE offheap_heap_inuse_bytes gauge\n",
			"# TYPE offheap_mallocs_total counter\noffheap_mallocs_total 102\n",
			`offheap_class_objects{size="64"} 90` + "\n",
			"offheap_memory_limit_bytes 33554432\n",
		} {
			if !strings.Contains(body, want) {
				t.Errorf("%s: missing %q", u, want)
			}
		}
	}
}

func TestText(t *testing.T) {
	srv := serve(t, New(liveHeap(t)))
	resp, body := get(t, srv.URL+mount+"?format=text")
	if resp.StatusCode != 200 || !strings.Contains(body, "size classes with activity") || !strings.Contains(body, "live objects") {
		t.Fatalf("%s\n%s", resp.Status, body)
	}
}

func TestPageMap(t *testing.T) {
	h := liveHeap(t)
	srv := serve(t, New(h))
	resp, body := get(t, srv.URL+mount+"pagemap")
	if resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	var m heapview.PageMap
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatal(err)
	}
	states, err := m.Decode()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(states, h.PageMap(nil)) {
		t.Fatalf("served map differs from h.PageMap: %s", body)
	}
	if !slices.Contains(states, arena.PageInUse) || len(states)%arena.ChunkPages != 0 {
		t.Fatalf("map of %d pages: %s", len(states), body)
	}
}

func TestStripPrefix(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle(mount, http.StripPrefix(strings.TrimSuffix(mount, "/"), New(liveHeap(t))))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	if resp, body := get(t, srv.URL+mount+"pagemap"); resp.StatusCode != 200 || !strings.Contains(body, `"runs"`) {
		t.Fatalf("pagemap behind StripPrefix: %s %s", resp.Status, body)
	}
}

func TestBadRequests(t *testing.T) {
	srv := serve(t, New(liveHeap(t)))
	if resp, body := get(t, srv.URL+mount+"?format=xml"); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "unknown format") {
		t.Errorf("format=xml: %s %s", resp.Status, body)
	}
	resp, err := http.Post(srv.URL+mount, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") == "" {
		t.Errorf("POST: %s", resp.Status)
	}
}

func TestClosedHeap(t *testing.T) {
	h, err := arena.NewHeap(arena.Config{Reserve: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	srv := serve(t, New(h))
	for _, u := range []string{"", "pagemap", "metrics"} {
		if resp, _ := get(t, srv.URL+mount+u); resp.StatusCode != 200 {
			t.Errorf("%q on a closed heap: %s", u, resp.Status)
		}
	}
}

func TestPublish(t *testing.T) {
	h := liveHeap(t)
	// expvar names live for the process: a name of its own per run, so
	// that go test -count=N does not publish one twice.
	name := fmt.Sprintf("offheap_test_heap_%d", time.Now().UnixNano())
	Publish(name, h)
	v := expvar.Get(name)
	if v == nil {
		t.Fatal("not published")
	}
	var s heapview.Snapshot
	if err := json.Unmarshal([]byte(v.String()), &s); err != nil {
		t.Fatal(err)
	}
	if s.HeapObjects != 92 {
		t.Fatalf("expvar snapshot: %+v", s.Figures)
	}
}
