package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/offheap/offheap/arena"
	"github.com/offheap/offheap/arena/arenahttp"
)

// TestAttachRefusesNonSnapshots: a reply that is JSON but not a snapshot
// is refused, not shown as an empty heap.
func TestAttachRefusesNonSnapshots(t *testing.T) {
	for _, body := range []string{`{}`, `null`, `[]`, `"a string"`, `garbage`, `{"status":"ok"}`} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(body))
		}))
		var stdout, stderr bytes.Buffer
		code := realMain([]string{"attach", srv.URL}, &stdout, &stderr)
		srv.Close()
		if code != exitBad || !strings.Contains(stderr.String(), "not an offheap snapshot") || stdout.Len() != 0 {
			t.Errorf("reply %s: exit %d, stdout %q, stderr %q", body, code, stdout.String(), stderr.String())
		}
	}
}

// TestAttachTakesServedSnapshot: what arenahttp serves is taken.
func TestAttachTakesServedSnapshot(t *testing.T) {
	h, err := arena.NewHeap(arena.Config{Reserve: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if _, err := h.Alloc(100); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(arenahttp.New(h))
	defer srv.Close()
	var stdout, stderr bytes.Buffer
	if code := realMain([]string{"attach", srv.URL}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "live objects") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
}
