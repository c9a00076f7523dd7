package arena

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"
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
		t.Fatalf("write after free at %#x not detected in %d allocations", bad, tries)
	}
	for _, want := range []string{"write after free", fmt.Sprintf("at %#x", bad), fmt.Sprintf("object at %#x", obj), "span", "class"} {
		if !strings.Contains(msg, want) {
			t.Fatalf("panic %q does not contain %q", msg, want)
		}
	}
	for _, p := range got {
		if uintptr(p) == obj {
			t.Fatalf("the corrupted object %#x was handed out", obj)
		}
		if err := f.Free(p); err != nil {
			t.Fatal(err)
		}
	}
}

// heapStillWorks checks, after a recovered check panic, that the corrupted
// slot stays out of use (freeing it again is a double free), that
// allocations through a and h return zeroed memory and never the retired
// object, that frees succeed, and that Verify passes.
func heapStillWorks(t *testing.T, h *Heap, a Allocator, f Freer, size int, obj uintptr) {
	t.Helper()
	if err := f.Free(h.ptr(obj)); !errors.Is(err, ErrDoubleFree) {
		t.Fatalf("Free of the retired object %#x: %v, want ErrDoubleFree", obj, err)
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
			if uintptr(p) == obj {
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
	heapStillWorks(t, h, h, h, 64, obj)
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
	heapStillWorks(t, h, h, c, 48, obj)
}

// spareAlloc allocates through the spare cache that serves Ps past the
// per-P caches, as Heap.Alloc does on such a P.
type spareAlloc struct{ h *Heap }

func (a spareAlloc) Alloc(size int) (unsafe.Pointer, error) {
	return a.h.allocShared(objClass(size), size, true)
}

// Past the per-P caches (GOMAXPROCS raised after NewHeap), Heap.Alloc uses
// the spare cache, under its mutex; the panic must leave the mutex free.
func TestDebugWriteAfterFreeSpareRecovers(t *testing.T) {
	if !inChild(t) {
		return
	}
	h := debugHeap(t)
	a := spareAlloc{h}
	obj, bad := writeAfterFree(t, a, h, 64, 3)
	wantWriteAfterFree(t, a, h, 64, 200, obj, bad)
	if !h.spare.mu.TryLock() {
		t.Fatal("spare cache mutex left locked by the panic")
	}
	h.spare.mu.Unlock()
	heapStillWorks(t, h, a, h, 64, obj)
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
	heapStillWorks(t, h, c, c, 64, obj)

	// Freed through the Heap (remote to c), found by c's collection.
	obj, bad = writeAfterFree(t, c, h, 96, 95)
	wantWriteAfterFree(t, c, c, 96, 200, obj, bad)
	heapStillWorks(t, h, c, h, 96, obj)
}
