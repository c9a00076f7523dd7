package arenahttp

import (
	"strings"
	"testing"
	"unsafe"

	"github.com/offheap/offheap/internal/heapview"
)

// TestScavengeFigures: the handler serves the scavenger's release calls
// and free committed bytes as Stats has them, in JSON, text and
// Prometheus form: freed memory shows as free committed until Scavenge
// releases it in some calls.
func TestScavengeFigures(t *testing.T) {
	h := quietHeap(t)
	var ps []unsafe.Pointer
	for range 16 {
		p, err := h.Alloc(256 << 10) // large: whole pages back to the page allocator on Free
		if err != nil {
			t.Fatal(err)
		}
		*(*byte)(p) = 1
		ps = append(ps, p)
	}
	for _, p := range ps {
		h.Free(p)
	}
	srv := serve(t, New(h))
	snap := func() heapview.Snapshot { return getSnapshot(t, srv) }
	before, st := snap(), h.Stats()
	if before.ScavengeFreeCommitted != st.ScavengeFreeCommitted || before.ScavengeFreeCommitted < 4<<20-64*8<<10 {
		t.Fatalf("served free committed %d, Stats %d, after freeing 4 MiB", before.ScavengeFreeCommitted, st.ScavengeFreeCommitted)
	}
	if released := h.Scavenge(); released == 0 {
		t.Fatal("Scavenge released nothing")
	}
	after, st := snap(), h.Stats()
	if after.ScavengeReleaseCalls == 0 || after.ScavengeReleaseCalls != st.ScavengeReleaseCalls ||
		after.ScavengeFreeCommitted != st.ScavengeFreeCommitted || after.ScavengeFreeCommitted >= before.ScavengeFreeCommitted {
		t.Fatalf("after Scavenge: served calls %d, free committed %d; Stats %d, %d; before %d",
			after.ScavengeReleaseCalls, after.ScavengeFreeCommitted, st.ScavengeReleaseCalls, st.ScavengeFreeCommitted,
			before.ScavengeFreeCommitted)
	}
	_, text := get(t, srv.URL+mount+"?format=text")
	_, prom := get(t, srv.URL+mount+"metrics")
	for _, want := range []string{"release calls", "free committed"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q", want)
		}
	}
	for _, want := range []string{"offheap_scavenge_release_calls_total ", "offheap_scavenge_free_committed_bytes "} {
		if !strings.Contains(prom, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
