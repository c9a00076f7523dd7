package arenahttp

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unsafe"

	"github.com/google/pprof/profile"

	"github.com/offheap/offheap/arena"
)

//go:noinline
func holdOffheapRecords(h *arena.Heap, n int) []unsafe.Pointer {
	var ps []unsafe.Pointer
	for range n {
		p, err := h.Alloc(512)
		if err != nil {
			panic(err)
		}
		ps = append(ps, p)
	}
	return ps
}

func TestProfileParsesAndNamesAllocator(t *testing.T) {
	h, err := arena.NewHeap(arena.Config{Reserve: 256 << 20, ProfileRate: 16 << 10, ScavengeDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ps := holdOffheapRecords(h, 20000) // ~10 MiB live: ~600 samples expected

	srv := httptest.NewServer(http.StripPrefix("/debug/offheap", New(h)))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/debug/offheap/profile")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %s", resp.Status)
	}
	p, err := profile.Parse(resp.Body)
	if err != nil {
		t.Fatalf("profile does not parse: %v", err)
	}
	if err := p.CheckValid(); err != nil {
		t.Fatal(err)
	}
	if len(p.SampleType) != 2 || p.SampleType[1].Type != "inuse_space" {
		t.Fatalf("sample types %v", p.SampleType)
	}
	var space int64
	named := 0
	for _, s := range p.Sample {
		space += s.Value[1]
		if len(s.Location) == 0 {
			t.Fatal("sample without a stack")
		}
		leaf := s.Location[0].Line[0].Function.Name
		if strings.HasPrefix(leaf, internalPrefix) {
			t.Fatalf("leaf frame %s is offheap's own", leaf)
		}
		if strings.HasSuffix(leaf, "holdOffheapRecords") {
			named++
		}
	}
	if named == 0 || named != len(p.Sample) {
		t.Fatalf("%d of %d samples name holdOffheapRecords as the allocating function", named, len(p.Sample))
	}
	// Scaled samples estimate the live bytes: 20000 × 512 = 10 MiB, within
	// a generous statistical margin.
	if live := int64(len(ps)) * 512; space < live/2 || space > live*2 {
		t.Fatalf("profile estimates %d live bytes, %d are live", space, live)
	}

	// A heap that does not sample serves an empty, valid profile.
	h2, err := arena.NewHeap(arena.Config{Reserve: 64 << 20, ScavengeDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close()
	var buf bytes.Buffer
	if err := WriteProfile(&buf, h2); err != nil {
		t.Fatal(err)
	}
	if p2, err := profile.Parse(&buf); err != nil || len(p2.Sample) != 0 {
		t.Fatalf("empty profile: %v, %d samples", err, len(p2.Sample))
	}
}
