package arena

import "testing"

// Heap.Alloc charges the profile countdown once per slot handed out,
// whichever per-P cache serves it: 20,000 allocations of 512 B at a
// 16 KiB rate make about 625 samples. The offheap_nolinkname build, whose
// slow paths land on a per-P cache chosen at random, once made twice that
// (a window re-cut before it ran dry was charged in full, then its unused
// slots again), and the pprof profile doubled every live byte.
func TestProfileRateHeapAlloc(t *testing.T) {
	const n, size, rate = 20000, 512, 16 << 10
	h, err := NewHeap(Config{Reserve: 256 << 20, ProfileRate: rate, ScavengeDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for range n {
		if _, err := h.Alloc(size); err != nil {
			t.Fatal(err)
		}
	}
	want := float64(n*size) / rate
	got := float64(h.Stats().ProfileSamples)
	t.Logf("%v samples, about %.0f expected", got, want)
	if got < want/1.5 || got > want*1.5 {
		t.Fatalf("%v profile samples for %d allocations of %d B at rate %d: want about %.0f", got, n, size, rate, want)
	}
}
