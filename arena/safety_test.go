package arena

import (
	"errors"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"unsafe"
)

// touch writes one byte at p and reports the faulting address, if the
// write faulted.
func touch(p uintptr) (faultAddr uintptr, faulted bool) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		if r := recover(); r != nil {
			re, ok := r.(interface{ Addr() uintptr })
			if !ok {
				panic(r)
			}
			faultAddr, faulted = re.Addr(), true
		}
	}()
	*(*byte)(addrPointer(p)) = 1
	return 0, false
}

func mapsLines(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

func TestGuardedCatchesUseAfterFreeAndOverflow(t *testing.T) {
	h := newTestHeap(t, Config{Reserve: 256 << 20, GuardSampleRate: 1, ScavengeDelay: -1})
	c := h.NewCache()
	defer c.Close()
	sizes := []int{1, 16, 100, 4096, 8000, 20000, 50000}
	type obj struct {
		p    uintptr
		size int
	}
	var objs []obj
	for i := 0; i < 300; i++ {
		n := sizes[i%len(sizes)]
		var p unsafe.Pointer
		var err error
		if i%2 == 0 {
			p, err = c.Alloc(n)
		} else {
			p, err = h.Alloc(n)
		}
		if err != nil {
			t.Fatal(err)
		}
		info, ok := h.Explain(uintptr(p))
		if !ok || !info.Guarded || info.Size != n || info.Addr != uintptr(p) {
			t.Fatalf("Explain(%p) = %+v, %v; want a live guarded object of %d bytes", p, info, ok, n)
		}
		objs = append(objs, obj{uintptr(p), n})
	}
	if err := h.Verify(); err != nil {
		t.Fatal(err)
	}
	// Overflow: the first byte past the 16-rounded end faults, inside the guard page.
	end := objs[0].p + uintptr((objs[0].size+15)&^15)
	if addr, ok := touch(end); !ok || addr != end {
		t.Fatalf("overflow write at %#x: faulted %v at %#x", end, ok, addr)
	}
	st := h.Stats()
	if st.GuardedObjects != uint64(len(objs)) {
		t.Fatalf("GuardedObjects %d, want %d", st.GuardedObjects, len(objs))
	}
	for _, o := range objs {
		if err := h.Free(addrPointer(o.p)); err != nil {
			t.Fatal(err)
		}
	}
	caught := 0
	for _, o := range objs {
		addr, ok := touch(o.p + uintptr(o.size)/2)
		if ok {
			caught++
			info, found := h.Explain(addr)
			if !found || !info.Freed || info.Addr != o.p {
				t.Fatalf("fault at %#x explained as %+v, %v", addr, info, found)
			}
			if !strings.Contains(info.String(), "TestGuardedCatchesUseAfterFreeAndOverflow") {
				t.Fatalf("explanation lacks the allocating stack:\n%s", info)
			}
		}
	}
	if caught*100 < len(objs)*99 {
		t.Fatalf("caught %d of %d uses after free, want at least 99%%", caught, len(objs))
	}
	t.Logf("caught %d of %d uses after free", caught, len(objs))
	if err := h.Free(addrPointer(objs[1].p)); !errors.Is(err, ErrDoubleFree) {
		t.Fatalf("double free of a guarded object: %v", err)
	}
	if err := h.Free(addrPointer(objs[1].p + 1)); !errors.Is(err, ErrInvalidPointer) {
		t.Fatalf("interior free of a guarded object: %v", err)
	}
	if err := h.Verify(); err != nil {
		t.Fatal(err)
	}
}

func TestGuardedMappingsBounded(t *testing.T) {
	h := newTestHeap(t, Config{Reserve: 1 << 30, GuardSampleRate: 1, ScavengeDelay: -1})
	before := mapsLines(t)
	var ps []unsafe.Pointer
	for i := 0; i < 3*guardMaxLive; i++ {
		p, err := h.Alloc(64)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
		if i%3 == 0 {
			if err := h.Free(p); err != nil {
				t.Fatal(err)
			}
			ps = ps[:len(ps)-1]
		}
	}
	peak := mapsLines(t) - before
	for _, p := range ps {
		if err := h.Free(p); err != nil {
			t.Fatal(err)
		}
	}
	after := mapsLines(t) - before
	bound := 2*(guardMaxLive+guardQuarantine) + 16
	t.Logf("mappings: +%d at peak, +%d after freeing (bound %d)", peak, after, bound)
	if peak > bound || after > bound {
		t.Fatalf("guarded allocation added %d / %d mappings, bound %d", peak, after, bound)
	}
	if err := h.Verify(); err != nil {
		t.Fatal(err)
	}
}

func TestGuardSampleRate(t *testing.T) {
	h := newTestHeap(t, Config{Reserve: 512 << 20, GuardSampleRate: 50, ScavengeDelay: -1})
	c := h.NewCache()
	defer c.Close()
	const n = 20000
	guarded := 0
	var ps []unsafe.Pointer
	for i := 0; i < n; i++ {
		p, err := c.Alloc(48)
		if err != nil {
			t.Fatal(err)
		}
		if info, _ := h.Explain(uintptr(p)); info.Guarded {
			guarded++
		}
		ps = append(ps, p)
		if len(ps) > 200 { // keep the live guarded count under its bound
			if err := c.Free(ps[0]); err != nil {
				t.Fatal(err)
			}
			ps = ps[1:]
		}
	}
	// One in 50 on average: 400 expected; allow wide statistical slack.
	if guarded < 200 || guarded > 800 {
		t.Fatalf("%d of %d allocations guarded at rate 50", guarded, n)
	}
	if err := h.Verify(); err != nil {
		t.Fatal(err)
	}
}

func TestDebugDetectsWriteAfterFree(t *testing.T) {
	h := newTestHeap(t, Config{Reserve: 128 << 20, Debug: true, ScavengeDelay: -1})
	c := h.NewCache()
	p, err := c.Alloc(64)
	if err != nil {
		t.Fatal(err)
	}
	b := unsafe.Slice((*byte)(p), 64)
	for i := range b {
		if b[i] != 0 {
			t.Fatalf("debug Alloc returned non-zero byte %d", i)
		}
		b[i] = 7
	}
	if err := c.Free(p); err != nil {
		t.Fatal(err)
	}
	if b[10] != debugPoison {
		t.Fatalf("freed object not poisoned: %#x", b[10])
	}
	if err := h.Verify(); err != nil {
		t.Fatal(err)
	}
	b[10] = 1 // write after free
	defer func() {
		r := recover()
		msg, _ := r.(string)
		if !strings.Contains(msg, "write after free") || !strings.Contains(msg, "class") {
			t.Fatalf("recovered %v, want a write-after-free report naming the class", r)
		}
	}()
	// The freed slot is the lowest free one: the next Alloc of the class
	// checks it.
	c.Alloc(64)
	t.Fatal("write after free not detected")
}

func TestDebugQuarantinesFreedSpans(t *testing.T) {
	h := newTestHeap(t, Config{Reserve: 128 << 20, Debug: true, ScavengeDelay: -1})
	p, err := h.Alloc(100 << 10)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Free(p); err != nil {
		t.Fatal(err)
	}
	if _, ok := touch(uintptr(p) + 5000); !ok {
		t.Fatal("touching a freed large object in debug mode did not fault")
	}
	if st := h.Stats(); st.GuardedQuarantined != 1 {
		t.Fatalf("GuardedQuarantined %d, want 1", st.GuardedQuarantined)
	}
	if err := h.Verify(); err != nil {
		t.Fatal(err)
	}
	// Objects round-trip normally in debug mode.
	c := h.NewCache()
	for i := 0; i < 5000; i++ {
		q, err := c.Alloc(i % 3000)
		if err != nil {
			t.Fatal(err)
		}
		if i%3 != 0 {
			if err := c.Free(q); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.Verify(); err != nil {
		t.Fatal(err)
	}
}

//go:noinline
func allocForProfile(h *Heap, n int) unsafe.Pointer {
	p, err := h.Alloc(n)
	if err != nil {
		panic(err)
	}
	return p
}

func TestProfileRecordsSampledAllocations(t *testing.T) {
	h := newTestHeap(t, Config{Reserve: 512 << 20, ProfileRate: 64 << 10, ScavengeDelay: -1})
	var ps []unsafe.Pointer
	total := 0
	for i := 0; i < 20000; i++ {
		n := 256
		if i%100 == 0 {
			n = 100 << 10
		}
		ps = append(ps, allocForProfile(h, n))
		total += n
	}
	recs := h.ProfileRecords()
	// About total/rate samples are expected.
	want := total / (64 << 10)
	if len(recs) < want/3 || len(recs) > want*3 {
		t.Fatalf("%d samples for %d bytes at rate 64 KiB, want about %d", len(recs), total, want)
	}
	found := false
	for _, r := range recs {
		frames := runtime.CallersFrames(r.Stack)
		for {
			f, more := frames.Next()
			if strings.HasSuffix(f.Function, "allocForProfile") {
				found = true
			}
			if !more {
				break
			}
		}
	}
	if !found {
		t.Fatal("no sample names the allocating function")
	}
	if st := h.Stats(); st.ProfileSamples != uint64(len(recs)) {
		t.Fatalf("Stats.ProfileSamples %d, records %d", st.ProfileSamples, len(recs))
	}
	for _, p := range ps {
		if err := h.Free(p); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(h.ProfileRecords()); n != 0 {
		t.Fatalf("%d samples left after freeing everything", n)
	}
	if err := h.Verify(); err != nil {
		t.Fatal(err)
	}
}
