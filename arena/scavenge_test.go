package arena

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/offheap/offheap/mmap"
	"github.com/offheap/offheap/pages"
	"golang.org/x/sys/unix"
)

// Tests of the scavenger's heap side: Scavenge, the worker's lifecycle,
// stats, the sysUsed path per mode. RSS tests are in scavenge_rss_test.go,
// strict mode in scavenge_strict_test.go, injected faults in
// scavenge_faults_test.go.

func newScavHeap(t testing.TB, cfg Config) *Heap {
	t.Helper()
	h, err := NewHeap(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func scavVerify(t testing.TB, h *Heap) {
	t.Helper()
	if err := h.Verify(); err != nil {
		t.Fatal(err)
	}
}

// scavRSS is the process's resident set in bytes (/proc/self/statm).
func scavRSS(t testing.TB) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skipf("no /proc/self/statm: %v", err)
	}
	f := strings.Fields(string(b))
	n, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n * uint64(os.Getpagesize())
}

// scavTouch writes one byte per OS page of [p, p+n), so it is resident.
func scavTouch(p unsafe.Pointer, n int) {
	ps := os.Getpagesize()
	for off := 0; off < n; off += ps {
		*(*byte)(unsafe.Add(p, off)) = 1
	}
}

func TestScavengeReleasesAll(t *testing.T) {
	for _, mode := range []mmap.DecommitMode{DecommitDontNeed, DecommitFree, DecommitStrict} {
		t.Run(mode.String(), func(t *testing.T) {
			h := newScavHeap(t, Config{Reserve: 256 << 20, ScavengeDelay: -1, Decommit: mode})
			var ps []unsafe.Pointer
			for i := range 300 {
				size := []int{100, 3000, 40 << 10, 300 << 10}[i%4]
				p, err := h.Alloc(size)
				if err != nil {
					t.Fatal(err)
				}
				scavTouch(p, size)
				ps = append(ps, p)
			}
			for _, p := range ps {
				if err := h.Free(p); err != nil {
					t.Fatal(err)
				}
			}
			before := h.Stats()
			got := h.Scavenge()
			after := h.Stats()
			if got == 0 || after.HeapReleased-before.HeapReleased != got {
				t.Fatalf("Scavenge %d, HeapReleased %d -> %d", got, before.HeapReleased, after.HeapReleased)
			}
			// All that stays committed is in spans held by per-P caches
			// and in page caches.
			if c := after.Committed - after.HeapInuse; c > uint64(len(h.perPCaches()))*pages.CachePages*pages.PageSize {
				t.Fatalf("%d free bytes still committed after Scavenge: %+v", c, after)
			}
			if h.Scavenge() != 0 {
				t.Fatal("second Scavenge released more")
			}
			scavVerify(t, h)
			// Reuse: everything handed out is zero, in every mode.
			for i := range 300 {
				size := []int{100, 3000, 40 << 10, 300 << 10}[i%4]
				p, err := h.Alloc(size)
				if err != nil {
					t.Fatal(err)
				}
				b := unsafe.Slice((*byte)(p), size)
				for k := range b {
					if b[k] != 0 {
						t.Fatalf("reused object %d (%d bytes) holds %#x at %d", i, size, b[k], k)
					}
				}
				scavTouch(p, size)
			}
			st := h.Stats()
			if st.ScavengeRecommitted == 0 {
				t.Fatalf("no re-commit counted: %+v", st)
			}
			scavVerify(t, h)
		})
	}
}

// Under MADV_FREE a reused page may keep its old contents: allocSpan must
// clear it even when every page of the span was released.
func TestScavengeFreeModeClears(t *testing.T) {
	h := newScavHeap(t, Config{Reserve: 64 << 20, ScavengeDelay: -1, Decommit: DecommitFree})
	const size = 1 << 20
	p, err := h.Alloc(size)
	if err != nil {
		t.Fatal(err)
	}
	b := unsafe.Slice((*byte)(p), size)
	for i := range b {
		b[i] = 0xAB
	}
	// Free would clear a small object; a large one keeps its bytes.
	if err := h.Free(p); err != nil {
		t.Fatal(err)
	}
	h.Scavenge()
	q, err := h.Alloc(size)
	if err != nil {
		t.Fatal(err)
	}
	if q != p {
		t.Logf("different address after reuse: %p vs %p", q, p)
	}
	for i, c := range unsafe.Slice((*byte)(q), size) {
		if c != 0 {
			t.Fatalf("byte %d = %#x after MADV_FREE reuse", i, c)
		}
	}
}

// The worker starts with the heap and is gone when Close returns: its
// done channel, closed by the worker's deferred last act, is open while
// the heap lives and closed once Close has returned.
func TestScavengerGoroutineLifecycle(t *testing.T) {
	var hs []*Heap
	for range 8 {
		h, err := NewHeap(Config{Reserve: 64 << 20, ScavengeDelay: 5 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if h.bg == nil || h.bgDone == nil {
			t.Fatal("NewHeap started no scavenger")
		}
		hs = append(hs, h)
	}
	time.Sleep(20 * time.Millisecond) // let the workers run a few cycles
	for _, h := range hs {
		done := h.bgDone
		select {
		case <-done:
			t.Fatal("worker exited while its heap is open")
		default:
		}
		if err := h.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-done:
		default:
			t.Fatal("Close returned before the worker exited")
		}
	}
	// Disabled: no worker at all.
	h, err := NewHeap(Config{Reserve: 64 << 20, ScavengeDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	if h.bg != nil || h.bgDone != nil {
		t.Fatal("ScavengeDelay < 0 started a worker")
	}
	h.Close()
}

// The worker releases free memory above the goal after the delay, with
// invariants holding while it runs, and fills in its stats.
func TestScavengerBackground(t *testing.T) {
	h := newScavHeap(t, Config{Reserve: 512 << 20, RetainBytes: 8 << 20, RetainFraction: -1,
		ScavengeDelay: 40 * time.Millisecond})
	var ps []unsafe.Pointer
	for range 64 {
		p, err := h.Alloc(1 << 20)
		if err != nil {
			t.Fatal(err)
		}
		scavTouch(p, 1<<20)
		ps = append(ps, p)
	}
	for _, p := range ps[8:] {
		h.Free(p)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		// Verify holds the scavenger's gate: it must pass even while the
		// worker is mid-cycle.
		scavVerify(t, h)
		st := h.Stats()
		free := st.HeapIdle - st.HeapReleased
		if free <= 8<<20+1<<20 && st.ScavengeCycles > 0 {
			t.Logf("released %d MiB, cycles %d, time %v, last cycle %v, max lock hold %v, goal %d MiB",
				st.ScavengeReleased>>20, st.ScavengeCycles, st.ScavengeTime, st.ScavengeLastCycle,
				st.ScavengeMaxLockHold, st.ScavengeGoal>>20)
			if st.ScavengeTime <= 0 || st.ScavengeMaxLockHold <= 0 || st.ScavengeGoal != 8<<20 {
				t.Fatalf("stats not filled in: %+v", st)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker left %d MiB free committed: %+v", free>>20, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, p := range ps[:8] {
		h.Free(p)
	}
	scavVerify(t, h)
}

// Config validation of the new fields.
func TestScavengeConfig(t *testing.T) {
	for _, cfg := range []Config{{Decommit: 7}, {Decommit: -1}, {RetainFraction: 1e9}} {
		if _, err := NewHeap(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("%+v: %v", cfg, err)
		}
	}
	h := newScavHeap(t, Config{Reserve: 64 << 20, HugePages: true})
	if st := h.Stats(); st.ScavengeGoal != DefaultRetainBytes {
		t.Fatalf("goal %d", st.ScavengeGoal)
	}
}

// MemoryLimit under each mode: the limit holds, Alloc fails with
// ErrOutOfMemory, the heap stays usable and allocation succeeds after
// frees, also where it must scavenge synchronously to make room.
func TestScavengeLimitModes(t *testing.T) {
	for _, mode := range []mmap.DecommitMode{DecommitDontNeed, DecommitFree, DecommitStrict} {
		t.Run(mode.String(), func(t *testing.T) {
			const limit = 64 << 20
			h := newScavHeap(t, Config{Reserve: 512 << 20, MemoryLimit: limit, Decommit: mode, ScavengeDelay: -1})
			var ps []unsafe.Pointer
			var err error
			for {
				var p unsafe.Pointer
				if p, err = h.Alloc(1 << 20); err != nil {
					break
				}
				ps = append(ps, p)
				if st := h.Stats(); st.Committed > limit {
					t.Fatalf("committed %d past the limit", st.Committed)
				}
			}
			if !errors.Is(err, ErrOutOfMemory) || len(ps) < 60 {
				t.Fatalf("after %d MiB: %v", len(ps), err)
			}
			scavVerify(t, h)
			// Free every other MiB: 3 MiB objects fit no hole, so the
			// holes must be released to make room.
			for i := 0; i < len(ps); i += 2 {
				h.Free(ps[i])
			}
			n := 0
			for {
				p, err := h.Alloc(3 << 20)
				if err != nil {
					if !errors.Is(err, ErrOutOfMemory) {
						t.Fatal(err)
					}
					break
				}
				scavTouch(p, 3<<20)
				n++
				if st := h.Stats(); st.Committed > limit {
					t.Fatalf("committed %d past the limit", st.Committed)
				}
			}
			if n < 8 {
				t.Fatalf("only %d 3 MiB objects after freeing half", n)
			}
			scavVerify(t, h)
			if st := h.Stats(); st.ScavengeReleased == 0 || st.MemoryLimit != limit {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// stallKernel is the real kernel, except that the first release madvise
// after arm is held until release is closed: a background scavenger step
// caught between taking its runs and returning them.
type stallKernel struct {
	mmap.Kernel
	armed   atomic.Bool
	entered chan struct{} // closed when the held call arrives
	release chan struct{} // closed by the test to let it go on
}

func (k *stallKernel) Madvise(addr, length uintptr, advice int) error {
	if advice != unix.MADV_HUGEPAGE && advice != unix.MADV_NOHUGEPAGE && k.armed.CompareAndSwap(true, false) {
		close(k.entered)
		<-k.release
	}
	return k.Kernel.Madvise(addr, length, advice)
}

// TestScavengeWaitsForBackgroundStep: Heap.Scavenge promises that no free
// page outside the page caches is left committed when it returns. A
// background step that has runs out for release (off the page
// allocator's free list, madvise not yet returned) must be waited for,
// or those pages are neither free nor in use nor released when Scavenge
// returns: TestStress/background_scavenger caught this in one run of
// three.
func TestScavengeWaitsForBackgroundStep(t *testing.T) {
	k := &stallKernel{Kernel: mmap.Real(), entered: make(chan struct{}), release: make(chan struct{})}
	h := newScavHeap(t, Config{Reserve: 64 << 20, Kernel: k, RetainBytes: -1, RetainFraction: -1,
		ScavengeDelay: time.Millisecond})
	var ps []unsafe.Pointer
	for range 16 {
		p, err := h.Alloc(256 << 10)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	k.armed.Store(true)
	for _, p := range ps {
		if err := h.Free(p); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-k.entered:
	case <-time.After(10 * time.Second):
		k.armed.Store(false)
		t.Fatal("the background scavenger made no release call within 10 s")
	}
	done := make(chan uint64)
	go func() { done <- h.Scavenge() }()
	select {
	case <-done:
		close(k.release)
		t.Fatal("Scavenge returned while a background step had runs out for release")
	case <-time.After(50 * time.Millisecond):
	}
	close(k.release)
	<-done
	st := h.Stats()
	cached := uint64(h.cachedPages.Load()) * PageSize
	if st.Committed > st.HeapInuse+cached {
		t.Errorf("after Scavenge: Committed %d > HeapInuse %d + page caches %d", st.Committed, st.HeapInuse, cached)
	}
	scavVerify(t, h)
}

// recordsResident is mincore's count of resident bytes of h's span
// record mapping, up to the bytes ever handed out.
func recordsResident(t testing.TB, h *Heap, n uintptr) uint64 {
	t.Helper()
	r := h.spans.Regions()[1]
	c, err := mmap.ResidentPages(r.Base, min(n, r.Size))
	if err != nil {
		t.Fatal(err)
	}
	return uint64(c) * uint64(os.Getpagesize())
}

// TestScavengeReleasesSpanRecords: after most spans of a heap are freed,
// Scavenge gives back the span records' pages too (mincore on the record
// mapping), Stats.Metadata falls by as much, and the heap goes on using
// reused records correctly.
func TestScavengeReleasesSpanRecords(t *testing.T) {
	h := newScavHeap(t, quiet(Config{Reserve: 512 << 20}))
	const size, total = 32, 96 << 20 // 12 k spans of 256 objects: 448-byte records
	var ps []unsafe.Pointer
	for range total / size {
		p, err := h.Alloc(size)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	before := h.Stats()
	recBytes := uintptr(h.spans.MetadataBytes(0)) // records ever handed out
	resBefore := recordsResident(t, h, recBytes)
	// Free all but one object in every 64th span's worth.
	kept := ps[:0]
	for i, p := range ps {
		if (i/256)%64 == 0 {
			kept = append(kept, p)
			continue
		}
		if err := h.Free(p); err != nil {
			t.Fatal(err)
		}
	}
	h.Scavenge()
	after := h.Stats()
	resAfter := recordsResident(t, h, recBytes)
	t.Logf("records: %d KiB resident before, %d KiB after; Metadata %d -> %d KiB",
		resBefore>>10, resAfter>>10, before.Metadata>>10, after.Metadata>>10)
	if resBefore-resAfter < uint64(recBytes)/2 {
		t.Errorf("span records resident: %d bytes before, %d after, of %d handed out; want most released",
			resBefore, resAfter, recBytes)
	}
	if drop := before.Metadata - after.Metadata; drop < uint64(recBytes)/2 || drop > resBefore {
		t.Errorf("Metadata fell by %d bytes; %d bytes of records were released", drop, resBefore-resAfter)
	}
	scavVerify(t, h)

	// The heap grows back over reused (zeroed) records.
	for i := range ps[len(kept):cap(ps)] {
		p, err := h.Alloc(size)
		if err != nil {
			t.Fatal(err)
		}
		*(*uint64)(p) = uint64(i)
		kept = append(kept, p)
	}
	scavVerify(t, h)
	for _, p := range kept {
		if err := h.Free(p); err != nil {
			t.Fatal(err)
		}
	}
	if st := h.Stats(); st.HeapObjects != 0 {
		t.Errorf("%d objects left", st.HeapObjects)
	}
	scavVerify(t, h)
}
