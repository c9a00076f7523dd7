package arenahttp

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path"

	"github.com/offheap/offheap/arena"
	"github.com/offheap/offheap/internal/heapview"
)

// The formats of the snapshot, chosen with ?format=.
const (
	FormatJSON = "json"
	FormatProm = "prom"
	FormatText = "text"
)

// The path elements of the endpoints other than the snapshot.
const (
	pathPageMap = "pagemap"
	pathMetrics = "metrics"
	pathProfile = "profile"
)

const (
	contentJSON = "application/json"
	contentText = "text/plain; charset=utf-8"
)

// Handler serves one heap's figures; see the package documentation for
// its endpoints.
type Handler struct {
	h    *arena.Heap
	snap *heapview.Taker // snapshots, reusing smaps' resident size for heapview.RSSTTL
}

// New returns a handler serving h's figures.
func New(h *arena.Heap) *Handler { return &Handler{h: h, snap: heapview.NewTaker(h)} }

// ServeHTTP routes on the last element of the request's path.
func (x *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	switch path.Base(r.URL.Path) {
	case pathPageMap:
		x.servePageMap(w)
		return
	case pathMetrics:
		x.serveSnapshot(w, FormatProm)
		return
	case pathProfile:
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="offheap.pb.gz"`)
		if err := WriteProfile(w, x.h); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
		return
	}
	format := r.URL.Query().Get("format")
	if format == "" {
		format = FormatJSON
	}
	x.serveSnapshot(w, format)
}

func (x *Handler) serveSnapshot(w http.ResponseWriter, format string) {
	switch format {
	case FormatJSON:
		writeJSON(w, x.snap.Take())
	case FormatProm:
		w.Header().Set("Content-Type", heapview.PromContentType)
		heapview.WriteProm(w, heapview.Series{Snap: x.snap.Take()})
	case FormatText:
		w.Header().Set("Content-Type", contentText)
		heapview.WriteTable(w, x.snap.Take())
	default:
		http.Error(w, fmt.Sprintf("unknown format %q (want %s, %s or %s)", format, FormatJSON, FormatProm, FormatText),
			http.StatusBadRequest)
	}
}

func (x *Handler) servePageMap(w http.ResponseWriter) {
	writeJSON(w, heapview.EncodePageMap(x.h.PageMap(nil)))
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentJSON)
	w.Write(append(b, '\n'))
}
