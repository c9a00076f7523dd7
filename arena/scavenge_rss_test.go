package arena

import (
	"errors"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
	"unsafe"
)

// Resident-memory tests on the real kernel. Each allocates and touches up
// to 1 GiB (the test machine has 24 GiB); -short skips them.

const scavGiB = 1 << 30

// scavMixedSizes allocates and touches about total bytes in mixed sizes,
// large and small, through h and a Cache.
func scavFill(t testing.TB, h *Heap, total int) []unsafe.Pointer {
	t.Helper()
	sizes := []int{2 << 20, 24 << 10, 300 << 10, 5 << 20, 64 << 10, 1 << 20, 8 << 10, 700 << 10}
	var ps []unsafe.Pointer
	for n, i := 0, 0; n < total; i++ {
		size := sizes[i%len(sizes)]
		p, err := h.Alloc(size)
		if err != nil {
			t.Fatalf("after %d MiB: %v", n>>20, err)
		}
		scavTouch(p, size)
		ps = append(ps, p)
		n += size
	}
	return ps
}

func scavFreeAll(t testing.TB, h *Heap, ps []unsafe.Pointer) {
	t.Helper()
	for _, p := range ps {
		if err := h.Free(p); err != nil {
			t.Fatal(err)
		}
	}
}

func scavBaseline(t testing.TB) uint64 {
	runtime.GC()
	debug.FreeOSMemory()
	return scavRSS(t)
}

// Scavenge gives back at least 95 % of a touched and freed GiB. With
// transparent huge pages (HugePages), so the GiB faults in quickly and the
// scavenger's whole-huge-page releases are exercised.
func TestScavengeRSSGiB(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 1 GiB")
	}
	h := newScavHeap(t, Config{Reserve: 2 * scavGiB, ScavengeDelay: -1, HugePages: true})
	base := scavBaseline(t)
	ps := scavFill(t, h, scavGiB)
	full := scavRSS(t)
	scavFreeAll(t, h, ps)
	start := time.Now()
	rel := h.Scavenge()
	took := time.Since(start)
	after := scavRSS(t)
	drop := int64(full) - int64(after)
	t.Logf("RSS: base %d MiB, full %d MiB, after Scavenge %d MiB (drop %d MiB); Scavenge released %d MiB in %v (%.1f GiB/s); max lock hold %v",
		base>>20, full>>20, after>>20, drop>>20, rel>>20, took, float64(rel)/scavGiB/took.Seconds(), h.Stats().ScavengeMaxLockHold)
	if full-base < scavGiB*95/100 {
		t.Fatalf("touching 1 GiB raised RSS by only %d MiB", (full-base)>>20)
	}
	if drop < scavGiB*95/100 {
		t.Fatalf("RSS dropped by %d MiB, want >= 95 %% of 1 GiB", drop>>20)
	}
	scavVerify(t, h)
}

// The background worker, default config, brings RSS down within 2 s of
// the frees (down to the goal: 64 MiB retained).
func TestScavengerRSSLatency(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 1 GiB")
	}
	h := newScavHeap(t, Config{Reserve: 2 * scavGiB})
	base := scavBaseline(t)
	ps := scavFill(t, h, scavGiB)
	full := scavRSS(t)
	scavFreeAll(t, h, ps)
	freed := time.Now()
	// Target: everything but the goal (64 MiB) and a little slack for
	// page caches and per-P spans.
	target := base + DefaultRetainBytes + 16<<20
	var lat time.Duration
	for {
		time.Sleep(50 * time.Millisecond)
		rss := scavRSS(t)
		if rss <= target {
			lat = time.Since(freed)
			break
		}
		if time.Since(freed) > rssLatencyBound {
			t.Fatalf("RSS %d MiB %v after freeing (base %d, full %d, target %d): %+v",
				rss>>20, rssLatencyBound, base>>20, full>>20, target>>20, h.Stats())
		}
	}
	st := h.Stats()
	t.Logf("RSS: base %d MiB, full %d MiB, down to %d MiB %v after the frees; cycles %d, time in release steps %v, last cycle %v, max lock hold %v",
		base>>20, full>>20, scavRSS(t)>>20, lat, st.ScavengeCycles, st.ScavengeTime, st.ScavengeLastCycle, st.ScavengeMaxLockHold)
}

// MemoryLimit 256 MiB: allocating a GiB stops with ErrOutOfMemory near
// the limit; RSS never passes limit + one chunk over the baseline; after
// frees allocation succeeds again.
func TestScavengeLimitRSS(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates up to 1 GiB")
	}
	const limit = 256 << 20
	h := newScavHeap(t, Config{Reserve: 2 * scavGiB, MemoryLimit: limit})
	base := scavBaseline(t)
	var peak uint64
	check := func() {
		rss := scavRSS(t)
		peak = max(peak, rss)
		if rss > base+limit+4<<20 {
			t.Fatalf("RSS %d MiB > base %d + limit 256 + 4 MiB", rss>>20, base>>20)
		}
	}
	sizes := []int{1 << 20, 40 << 10, 3 << 20, 16 << 10}
	var ps []unsafe.Pointer
	var err error
	total := 0
	for i := 0; total < scavGiB; i++ {
		size := sizes[i%len(sizes)]
		var p unsafe.Pointer
		if p, err = h.Alloc(size); err != nil {
			break
		}
		scavTouch(p, size)
		ps = append(ps, p)
		total += size
		if i%16 == 0 {
			check()
		}
	}
	check()
	if !errors.Is(err, ErrOutOfMemory) {
		t.Fatalf("allocated %d MiB under a 256 MiB limit: %v", total>>20, err)
	}
	st := h.Stats()
	if st.HeapInuse < limit-16<<20 || st.Committed > limit {
		t.Fatalf("failed at %d MiB in use, %d committed", st.HeapInuse>>20, st.Committed>>20)
	}
	t.Logf("failed after %d MiB (in use %d MiB): %v; peak RSS %d MiB over base", total>>20, st.HeapInuse>>20, err, (peak-base)>>20)
	scavVerify(t, h)

	// Free half, in a pattern that leaves holes, and allocate other sizes:
	// the limit path must release the holes synchronously.
	for i := 0; i < len(ps); i += 2 {
		h.Free(ps[i])
	}
	n := 0
	for ; n < 40; n++ {
		p, err := h.Alloc(2 << 20)
		if err != nil {
			break
		}
		scavTouch(p, 2<<20)
		check()
	}
	if n < 20 {
		t.Fatalf("only %d 2 MiB objects after freeing half", n)
	}
	check()
	scavVerify(t, h)
	st = h.Stats()
	t.Logf("after frees: %d more 2 MiB objects; peak RSS %d MiB over base; committed %d MiB, released by scavenging %d MiB", n, (peak-base)>>20, st.Committed>>20, st.ScavengeReleased>>20)
}
