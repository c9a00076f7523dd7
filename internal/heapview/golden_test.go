package heapview

import (
	"bytes"
	"encoding/json"
	"flag"
	"testing"

	"github.com/offheap/offheap/internal/heapview/heapviewtest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func fixed() Snapshot {
	return Derive(heapviewtest.Stats(), heapviewtest.SpanBytes(), heapviewtest.RSS, true)
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	heapviewtest.Golden(t, name, got, *update)
}

func TestGoldenTable(t *testing.T) {
	var b bytes.Buffer
	if err := WriteTable(&b, fixed()); err != nil {
		t.Fatal(err)
	}
	golden(t, "table.golden", b.Bytes())
}

func TestGoldenJSON(t *testing.T) {
	b, err := json.MarshalIndent(fixed(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "snapshot.json.golden", append(b, '\n'))
}

func TestGoldenProm(t *testing.T) {
	var b bytes.Buffer
	if err := WriteProm(&b, Series{Snap: fixed()}); err != nil {
		t.Fatal(err)
	}
	golden(t, "metrics.prom.golden", b.Bytes())
}

func TestDeriveFixed(t *testing.T) {
	s := fixed()
	// 1 - HeapAlloc/(HeapInuse-RegionInuse), HeapAlloc = 8000+14400+86016+2 MiB.
	want := 1 - float64(8000+14400+3*28672+2<<20)/float64(3<<20)
	if s.Fragmentation != want {
		t.Errorf("fragmentation %v, want %v", s.Fragmentation, want)
	}
	if len(s.Classes) != 4 { // class 2 never allocated
		t.Fatalf("classes %+v, want the 4 with mallocs", s.Classes)
	}
	if c := s.Classes[0]; c.Utilisation != 8000.0/8192 {
		t.Errorf("class 1 utilisation %v", c.Utilisation)
	}
	if c := s.Classes[2]; c.Spans != 0 || c.Utilisation != 0 {
		t.Errorf("class with no spans: %+v", c)
	}
	if s := Derive(heapviewtest.Stats(), nil, 0, false); s.Classes[0].Utilisation != 0 || s.Classes[0].SpanBytes != 0 {
		t.Errorf("unknown span bytes gave %+v", s.Classes[0])
	}
}
