package arena

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime/debug"
	"testing"
	"unsafe"

	"github.com/offheap/offheap/mmap"
	"github.com/offheap/offheap/pages"
)

// A quarantined range whose mprotect back to read/write fails at eviction
// goes back to the page allocator still PROT_NONE. The next span built on
// those pages must be made accessible again, whatever the decommit mode:
// before the fix, under MADV_DONTNEED and MADV_FREE nothing re-committed
// them and the first write faulted, in Alloc's clear (a fatal fault inside
// the runtime's memclr, which SetPanicOnFault cannot catch) or in the
// caller. So each case runs in a child process: a fault fails the case
// instead of killing the test binary.
func TestQuarantineEvictionCommitFailure(t *testing.T) {
	child := os.Getenv(quarantineChildEnv)
	for _, mode := range []mmap.DecommitMode{DecommitDontNeed, DecommitFree, DecommitStrict} {
		for _, tc := range []struct {
			name string
			cfg  Config
			size int // each object gets a span of its own
		}{
			{"guarded", Config{GuardSampleRate: 1}, 100},
			{"debug", Config{Debug: true}, 40 << 10},
		} {
			name := fmt.Sprintf("%v/%s", mode, tc.name)
			t.Run(name, func(t *testing.T) {
				if child == "" {
					cmd := exec.Command(os.Args[0], "-test.run=^TestQuarantineEvictionCommitFailure$", "-test.count=1")
					// A race build sleeps a second at exit unless told not to.
					cmd.Env = append(os.Environ(), quarantineChildEnv+"="+name, "GORACE=atexit_sleep_ms=0")
					if out, err := cmd.CombinedOutput(); err != nil {
						t.Fatalf("child process: %v\n%s", err, lastLines(out, 30))
					}
					return
				}
				if child != name {
					t.Skip("another child's case")
				}
				fi := mmap.NewFaultInjector(nil)
				cfg := tc.cfg
				cfg.Reserve, cfg.ScavengeDelay, cfg.Decommit, cfg.Kernel = 256<<20, -1, mode, fi
				h := newTestHeap(t, cfg)
				h.guard.quarantineCap = testQuarantine
				quarantineEvictionCommitFailure(t, h, fi, tc.size)
			})
		}
	}
}

const quarantineChildEnv = "OFFHEAP_QUARANTINE_CHILD"

// testQuarantine is the quarantine bound these tests run with: small, so a
// few frees reach eviction (each child of the race build runs in well
// under a second).
const testQuarantine = 8

// lastLines returns at most the last n lines of out.
func lastLines(out []byte, n int) string {
	end := len(out)
	for i := len(out) - 1; i >= 0; i-- {
		if out[i] == '\n' {
			if n--; n < 0 {
				return string(out[i+1 : end])
			}
		}
	}
	return string(out)
}

func quarantineEvictionCommitFailure(t *testing.T, h *Heap, fi *mmap.FaultInjector, size int) {
	// Fill the quarantine to its bound.
	for range testQuarantine {
		p, err := h.Alloc(size)
		if err != nil {
			t.Fatal(err)
		}
		fillBytes(p, size, 0x5a)
		if err := h.Free(p); err != nil {
			t.Fatal(err)
		}
	}
	h.guard.mu.Lock()
	oldest := h.guard.quarantine[0]
	h.guard.mu.Unlock()

	// One more free evicts the oldest range; its re-commit fails.
	p, err := h.Alloc(size)
	if err != nil {
		t.Fatal(err)
	}
	commits := fi.Calls(mmap.OpCommit)
	fi.FailNth(mmap.OpCommit, 1)
	if err := h.Free(p); err != nil {
		t.Fatal(err)
	}
	if fi.Calls(mmap.OpCommit) != commits+1 {
		t.Fatalf("the eviction made %d commits, want 1", fi.Calls(mmap.OpCommit)-commits)
	}
	verifyOK(t, h)

	// Allocate until a span lands on the evicted pages, writing everything.
	lo, hi := oldest.base, oldest.base+oldest.npages*pages.PageSize
	var live []unsafe.Pointer
	reused := false
	for i := 0; i < 4*testQuarantine && !reused; i++ {
		p, err := h.Alloc(size)
		if err != nil {
			if errors.Is(err, ErrOutOfMemory) {
				continue // a re-commit may fail again: named, and fine
			}
			t.Fatal(err)
		}
		live = append(live, p)
		if a := uintptr(p); a >= lo && a < hi {
			reused = true
		}
		if err := writeNoFault(p, size, uint64(i)); err != nil {
			t.Fatalf("object %d at %#x (evicted range [%#x, %#x)): %v", i, p, lo, hi, err)
		}
	}
	if !reused {
		t.Fatalf("no allocation reused the evicted range [%#x, %#x)", lo, hi)
	}
	verifyOK(t, h)
	for _, p := range live {
		if err := h.Free(p); err != nil {
			t.Fatal(err)
		}
	}
	verifyOK(t, h)
}

// writeNoFault writes a pattern over n bytes at p, checks it, and turns a
// memory fault into an error instead of killing the test binary.
func writeNoFault(p unsafe.Pointer, n int, id uint64) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("fault: %v", r)
		}
	}()
	writePattern(p, n, id)
	if k := findPatternError(p, n, id); k >= 0 {
		return fmt.Errorf("byte %d does not read back", k)
	}
	return nil
}

// A guarded object whose decommit fails at Free keeps its data while
// quarantined. When it is evicted its pages must not go back as released
// (zero): under MADV_DONTNEED a span built wholly on released pages is not
// cleared, so before the fix the next allocation there returned the old
// object's bytes instead of zeros.
func TestQuarantineDirtyEviction(t *testing.T) {
	fi := mmap.NewFaultInjector(nil)
	h := newTestHeap(t, Config{Reserve: 256 << 20, ScavengeDelay: -1, GuardSampleRate: 1, Kernel: fi})
	h.guard.quarantineCap = testQuarantine
	const size = 100
	p, err := h.Alloc(size)
	if err != nil {
		t.Fatal(err)
	}
	fillBytes(p, size, 0x5a)
	fi.FailNth(mmap.OpDecommit, 1) // the madvise of its strict decommit
	if err := h.Free(p); err != nil {
		t.Fatal(err)
	}
	h.guard.mu.Lock()
	oldest := h.guard.quarantine[0]
	h.guard.mu.Unlock()
	for range testQuarantine { // evicts it
		q, err := h.Alloc(size)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Free(q); err != nil {
			t.Fatal(err)
		}
	}
	verifyOK(t, h)
	lo, hi := oldest.base, oldest.base+oldest.npages*pages.PageSize
	var live []unsafe.Pointer
	reused := false
	for i := 0; i < 4*testQuarantine && !reused; i++ {
		q, err := h.Alloc(size)
		if err != nil {
			t.Fatal(err)
		}
		live = append(live, q)
		if k := firstByteNot(q, size, 0); k >= 0 {
			t.Fatalf("new object %d at %#x: byte %d is %#x, want zero (evicted range [%#x, %#x))", i, q, k, bytesAt(q, size)[k], lo, hi)
		}
		reused = uintptr(q) >= lo && uintptr(q) < hi
	}
	if !reused {
		t.Fatalf("no allocation reused the evicted range [%#x, %#x)", lo, hi)
	}
	for _, q := range live {
		if err := h.Free(q); err != nil {
			t.Fatal(err)
		}
	}
	verifyOK(t, h)
}
