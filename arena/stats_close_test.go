package arena

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestStatsAfterCloseKeepFigures(t *testing.T) {
	h, err := NewHeap(Config{Reserve: 64 << 20, ScavengeDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if _, err := h.Alloc(100 + i*50); err != nil {
			t.Fatal(err)
		}
	}
	before := h.Stats()
	if before.HeapInuse == 0 || before.HeapAlloc == 0 {
		t.Fatalf("nothing allocated: %+v", before)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, h.Stats()); diff != "" {
		t.Fatalf("Stats after Close differ from before (-before +after):\n%s", diff)
	}
}
