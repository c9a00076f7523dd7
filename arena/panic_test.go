package arena

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/offheap/offheap/mmap"
)

// The checks that panic (Debug's poison check, internal invariants) promise
// an ordinary panic the caller can recover, raised with no lock held and
// not pinned to a P. A panic raised while pinned is a fatal runtime error
// that kills the process ("panic holding locks"), and one raised under a
// mutex leaves the mutex locked, so the next call deadlocks. Either would
// take the test binary down with it, so the tests that reach a check
// through Heap.Alloc run in a child process: the test binary re-executed
// with panicChildEnv set, running just that test.

// panicChildEnv marks the re-executed test binary.
const panicChildEnv = "OFFHEAP_PANIC_TEST_CHILD"

// panicChildTimeout bounds a child: a panic under a lock shows as a hang.
const panicChildTimeout = 2 * time.Minute

// inChild runs the calling test in a child process and reports whether the
// caller is that child (and so should run the scenario). In the parent it
// fails the test unless the child passed.
func inChild(t *testing.T) bool {
	t.Helper()
	if os.Getenv(panicChildEnv) == t.Name() {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), panicChildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), panicChildEnv+"="+t.Name())
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("child hung for %v (a panic under a lock?):\n%s", panicChildTimeout, out)
	}
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("child: %v\n%s", err, out)
	}
	return false
}

// onePerP pins the scenario to one P, so Heap.Alloc and Heap.Free always use
// the same per-P cache.
func onePerP(t *testing.T) {
	old := runtime.GOMAXPROCS(1)
	t.Cleanup(func() { runtime.GOMAXPROCS(old) })
}

// catchPanic runs f and returns what it panicked with ("" if it did not).
func catchPanic(f func()) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = fmt.Sprint(r)
		}
	}()
	f()
	return ""
}

// writeAfterFree allocates a size-byte object from a, frees it through f,
// writes one byte into it, and returns its address and the corrupted byte's.
func writeAfterFree(t *testing.T, a Allocator, f Freer, size, at int) (obj, bad uintptr) {
	t.Helper()
	p, err := a.Alloc(size)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Free(p); err != nil {
		t.Fatal(err)
	}
	// A remote free waits in its cache's batch (remotefree.go): publish
	// it, so that the owner can collect the slot and hand it out.
	if c, ok := f.(*Cache); ok {
		publishCache(t, c)
	} else if h, ok := f.(*Heap); ok {
		publishBatches(t, h)
	}
	b := unsafe.Slice((*byte)(p), size)
	if b[at] != debugPoison {
		t.Fatalf("freed object not poisoned: %#x", b[at])
	}
	b[at] = 1
	return uintptr(p), uintptr(p) + uintptr(at)
}

// wantWriteAfterFree calls alloc until it panics (at most tries times: the
// corrupted slot is handed out once its cache gets to it) and checks the
// panic names the corrupted byte and the object. It frees what it got.
func wantWriteAfterFree(t *testing.T, a Allocator, f Freer, size, tries int, obj, bad uintptr) {
	t.Helper()
	got := wantAllocPanic(t, a, f, size, tries, "write after free", fmt.Sprintf("at %#x", bad), fmt.Sprintf("object at %#x", obj), "span", "class")
	for _, p := range got {
		if uintptr(p) == obj {
			t.Fatalf("the corrupted object %#x was handed out", obj)
		}
	}
}

// wantAllocPanic calls a.Alloc(size) until it panics, at most tries times,
// checks the panic message holds every one of wants, and frees through f
// what it allocated (returning those pointers).
func wantAllocPanic(t *testing.T, a Allocator, f Freer, size, tries int, wants ...string) []unsafe.Pointer {
	t.Helper()
	var got []unsafe.Pointer
	var msg string
	for i := 0; i < tries && msg == ""; i++ {
		msg = catchPanic(func() {
			p, err := a.Alloc(size)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, p)
		})
	}
	if msg == "" {
		t.Fatalf("no panic in %d allocations, want one with %q", tries, wants)
	}
	wantMessage(t, msg, wants...)
	for _, p := range got {
		if err := f.Free(p); err != nil {
			t.Fatal(err)
		}
	}
	return got
}

// wantMessage fails the test unless msg holds every one of wants.
func wantMessage(t *testing.T, msg string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(msg, want) {
			t.Fatalf("panic %q does not contain %q", msg, want)
		}
	}
}

// heapStillWorks checks, after a recovered check panic, that the object
// at obj is not live (freeing it again is a double free), that allocations
// through a and h return zeroed memory, and never obj if it was retired,
// that frees succeed, and that Verify passes.
func heapStillWorks(t *testing.T, h *Heap, a Allocator, f Freer, size int, obj uintptr, retired bool) {
	t.Helper()
	// A retired slot keeps its span; otherwise the span may be gone.
	if err := f.Free(h.ptr(obj)); !errors.Is(err, ErrDoubleFree) && (retired || !errors.Is(err, ErrInvalidPointer)) {
		t.Fatalf("Free of the dead object %#x: %v, want ErrDoubleFree", obj, err)
	}
	verifyOK(t, h)
	for _, al := range []Allocator{a, h} {
		var ps []unsafe.Pointer
		for i := 0; i < 300; i++ {
			n := size
			if i%3 == 1 {
				n = 1000
			}
			p, err := al.Alloc(n)
			if err != nil {
				t.Fatal(err)
			}
			if retired && uintptr(p) == obj {
				t.Fatalf("retired object %#x handed out again", obj)
			}
			if k := firstByteNot(p, n, 0); k >= 0 {
				t.Fatalf("Alloc(%d) after a recovered panic returned %#x with byte %d non-zero", n, p, k)
			}
			fillBytes(p, n, 0x5a)
			ps = append(ps, p)
		}
		for _, p := range ps {
			if err := f.Free(p); err != nil {
				t.Fatal(err)
			}
		}
	}
	verifyOK(t, h)
}

func debugHeap(t *testing.T) *Heap {
	return newTestHeap(t, Config{Reserve: 128 << 20, Debug: true, ScavengeDelay: -1})
}

// Through Heap.Alloc the poison check runs on the per-P path: pinned in
// normal builds, under the per-P mutex in race builds.
func TestDebugWriteAfterFreeHeapAllocRecovers(t *testing.T) {
	if !inChild(t) {
		return
	}
	onePerP(t)
	h := debugHeap(t)
	obj, bad := writeAfterFree(t, h, h, 64, 10)
	wantWriteAfterFree(t, h, h, 64, 1, obj, bad)
	heapStillWorks(t, h, h, h, 64, obj, true)
}

// A remote free (through a Cache) poisons the slot; the per-P cache
// collects it and finds the write when it hands the slot out.
func TestDebugWriteAfterRemoteFreeHeapAllocRecovers(t *testing.T) {
	if !inChild(t) {
		return
	}
	onePerP(t)
	h := debugHeap(t)
	c := h.NewCache()
	defer c.Close()
	obj, bad := writeAfterFree(t, h, c, 48, 47)
	wantWriteAfterFree(t, h, h, 48, 200, obj, bad)
	heapStillWorks(t, h, h, c, 48, obj, true)
}

// The same checks through an explicit Cache, freed locally and remotely.
// A Cache is never pinned, but a panic used to leave its window holding
// unchecked poisoned slots that the fast path handed out unzeroed.
func TestDebugWriteAfterFreeCacheAllocRecovers(t *testing.T) {
	h := debugHeap(t)
	c := h.NewCache()
	defer c.Close()
	obj, bad := writeAfterFree(t, c, c, 64, 10)
	wantWriteAfterFree(t, c, c, 64, 1, obj, bad)
	heapStillWorks(t, h, c, c, 64, obj, true)

	// Freed through the Heap (remote to c), found by c's collection.
	obj, bad = writeAfterFree(t, c, h, 96, 95)
	wantWriteAfterFree(t, c, c, 96, 200, obj, bad)
	heapStillWorks(t, h, c, h, 96, obj, true)
}

// A double free that races (the owning cache frees an object locally while
// another goroutine frees it remotely, both having found it allocated)
// leaves a freed bit on a free slot. Collecting freed bits finds it: when
// the owner's window runs dry (pinned, on the per-P path), when a span
// goes back to the central lists, when a remote free finishes a central
// span's pending frees (under the class lock), and when a cache takes a
// central span (under the class lock). The race cannot be forced through
// the public API, so raceDoubleFree makes its outcome with uncheckedFree,
// which skips Free's double-free check as the losing side of the race
// passed it. The slot is already free, so the bit is dropped: the object
// stays dead and the heap consistent.

// raceDoubleFree allocates a size-byte object from owner, frees it there,
// then frees it again through other as if the two frees had raced.
func raceDoubleFree(t *testing.T, h *Heap, owner Allocator, ownerFree, other Freer, size int) uintptr {
	t.Helper()
	p, err := owner.Alloc(size)
	if err != nil {
		t.Fatal(err)
	}
	if err := ownerFree.Free(p); err != nil {
		t.Fatal(err)
	}
	h.uncheckedFree = true
	err = other.Free(p)
	h.uncheckedFree = false
	if err != nil {
		t.Fatal(err)
	}
	return uintptr(p)
}

func racedMessage(p uintptr) []string {
	return []string{fmt.Sprintf("racing double free of %#x", p), "span", "class", "state 0"}
}

// A cache collects freed bits only when no slot of its span is free, so
// the raced bit it finds sits on a slot that is not free either: a slot
// retired by Debug's poison check (a bit on a reallocated slot frees the
// new object, which no check can tell from a proper free). Here the
// object is freed by its owner, freed again by the race's other side,
// then written to: the poison check retires it, and the collection then
// finds the raced bit on the retired slot.
func racedOnRetired(t *testing.T, h *Heap, a Allocator, ownerFree, other Freer, tries int) {
	t.Helper()
	p := raceDoubleFree(t, h, a, ownerFree, other, 64)
	unsafe.Slice((*byte)(h.ptr(p)), 64)[5] = 1
	wantWriteAfterFree(t, a, ownerFree, 64, tries, p, p+5)
	// Fill the span so that the cache runs dry and collects.
	want := racedMessage(p)
	want[len(want)-1] = "state 4"
	wantAllocPanic(t, a, ownerFree, 64, 1000, want...)
	heapStillWorks(t, h, a, ownerFree, 64, p, true)
	heapStillWorks(t, h, a, other, 64, p, true)
}

// Found by the per-P cache's collection, pinned (Heap.Alloc); the other
// free came through a Cache.
func TestRacedDoubleFreeHeapAllocRecovers(t *testing.T) {
	if !inChild(t) {
		return
	}
	onePerP(t)
	h := debugHeap(t)
	c := h.NewCache()
	defer c.Close()
	racedOnRetired(t, h, h, h, c, 1)
}

// Found by an explicit Cache's collection (Cache.Alloc); the other free
// came through the Heap.
func TestRacedDoubleFreeCacheAllocRecovers(t *testing.T) {
	h := debugHeap(t)
	c := h.NewCache()
	defer c.Close()
	racedOnRetired(t, h, c, c, h, 1)
}

// Found when a remote free (Heap.Free, Cache.Free) into a central span
// collects its pending frees under the class lock; the panic must come
// after the lock is released, or the next refill of the class deadlocks.
func TestRacedDoubleFreeCentralRecovers(t *testing.T) {
	if !inChild(t) {
		return
	}
	h := newTestHeap(t, Config{Reserve: 128 << 20, ScavengeDelay: -1})
	other := h.NewCache()
	defer other.Close()
	for _, f := range []Freer{h, other} {
		c := h.NewCache()
		p, err := c.Alloc(64)
		if err != nil {
			t.Fatal(err)
		}
		q, err := c.Alloc(64)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Free(p); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil { // the span goes central, q live
			t.Fatal(err)
		}
		h.uncheckedFree = true
		msg := catchPanic(func() { _ = f.Free(p) })
		h.uncheckedFree = false
		wantMessage(t, msg, racedMessage(uintptr(p))...)
		verifyOK(t, h)
		if err := f.Free(q); err != nil {
			t.Fatal(err)
		}
		heapStillWorks(t, h, h, f, 64, uintptr(p), false)
	}
}

// Found when a cache takes a central span (under the class lock), and
// when a cache hands one back (Cache.Close).
func TestRacedDoubleFreeTakeAndReturnRecovers(t *testing.T) {
	if !inChild(t) {
		return
	}
	h := newTestHeap(t, Config{Reserve: 128 << 20, ScavengeDelay: -1})
	c := h.NewCache()
	ps := make([]unsafe.Pointer, 3)
	for i := range ps {
		var err error
		if ps[i], err = c.Alloc(64); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Free(ps[0]); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil { // central, two live: the bit waits
		t.Fatal(err)
	}
	h.uncheckedFree = true
	err := h.Free(ps[0])
	h.uncheckedFree = false
	if err != nil {
		t.Fatal(err)
	}
	c2 := h.NewCache()
	wantAllocPanic(t, c2, c2, 64, 1, racedMessage(uintptr(ps[0]))...)
	verifyOK(t, h)
	for _, p := range ps[1:] {
		if err := c2.Free(p); err != nil {
			t.Fatal(err)
		}
	}
	heapStillWorks(t, h, c2, c2, 64, uintptr(ps[0]), false)

	// Handing a span back: the owner frees locally, the race's other free
	// leaves its bit, and Close collects it.
	p := raceDoubleFree(t, h, c2, c2, h, 64)
	msg := catchPanic(func() { _ = c2.Close() })
	wantMessage(t, msg, racedMessage(p)...)
	if err := c2.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v, want ErrClosed", err)
	}
	heapStillWorks(t, h, h, h, 64, p, false)
}

// lockProbe wraps the real kernel and counts the system calls made while
// the mutex it watches is held (the tests using it are single-goroutine,
// so a failed TryLock means the caller holds it).
type lockProbe struct {
	mmap.Kernel
	mu          atomic.Pointer[sync.Mutex]
	calls, held atomic.Int32
}

func (k *lockProbe) check() {
	m := k.mu.Load()
	if m == nil {
		return
	}
	k.calls.Add(1)
	if !m.TryLock() {
		k.held.Add(1)
		return
	}
	m.Unlock()
}

func (k *lockProbe) Mprotect(addr, length uintptr, prot int) error {
	k.check()
	return k.Kernel.Mprotect(addr, length, prot)
}

func (k *lockProbe) Madvise(addr, length uintptr, advice int) error {
	k.check()
	return k.Kernel.Madvise(addr, length, advice)
}

// A Region's mutex is never held across taking or freeing a span: growing
// the heap and (in Debug mode) quarantining freed spans make system calls,
// and a broken invariant there panics.
func TestRegionLockNotHeldAcrossSyscalls(t *testing.T) {
	k := &lockProbe{Kernel: mmap.Real()}
	h := newTestHeap(t, Config{Reserve: 64 << 20, Debug: true, ScavengeDelay: -1, Kernel: k})
	r := h.NewRegion()
	k.mu.Store(&r.mu.Mutex)
	for i := 0; i < 300; i++ { // about 5 MiB: grows the heap past its first chunk
		if _, err := r.Alloc(16 << 10); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Alloc(100 << 10); err != nil {
		t.Fatal(err)
	}
	if err := r.Free(); err != nil {
		t.Fatal(err)
	}
	if k.calls.Load() == 0 {
		t.Fatal("no system call seen: the probe tests nothing")
	}
	if n := k.held.Load(); n > 0 {
		t.Fatalf("%d of %d system calls made holding the region's mutex", n, k.calls.Load())
	}
	verifyOK(t, h)
}

// An internal invariant broken under a class lock (here a central span's
// list tag, overwritten by the test) panics after the lock is released:
// the panic is recoverable, the class keeps working and Verify reports
// what is wrong instead of crashing.
func TestCentralListInvariantPanicsUnlocked(t *testing.T) {
	h := newTestHeap(t, Config{Reserve: 128 << 20, ScavengeDelay: -1})
	c := h.NewCache()
	p, err := c.Alloc(64)
	if err != nil {
		t.Fatal(err)
	}
	s := h.spans.Lookup(uintptr(p))
	if err := c.Close(); err != nil { // the span goes central, p live
		t.Fatal(err)
	}
	s.List = 7 // no such list
	msg := catchPanic(func() { _ = h.Free(p) })
	wantMessage(t, msg, "wrong list", fmt.Sprintf("span %d ", s.ID()), "class")
	cl := &h.central[s.Class]
	if !cl.mu.TryLock() {
		t.Fatal("class lock left held by the panic")
	}
	cl.mu.Unlock()
	if err := h.Verify(); err == nil {
		t.Fatal("Verify found nothing wrong with the corrupted span")
	}
	c2 := h.NewCache()
	for i := 0; i < 300; i++ {
		if _, err := c2.Alloc(64); err != nil {
			t.Fatal(err)
		}
	}
}
