package arena

import (
	"errors"
	"fmt"
	"testing"
	"time"
	"unsafe"

	"github.com/offheap/offheap/mmap"
)

// Injected kernel failures at every syscall site, one at a time: each
// failure either surfaces as an error wrapping ErrOutOfMemory (allocation)
// or is absorbed and retried (release), and h.Verify() holds after every
// step. Nothing is lost: once the faults stop, everything free can be
// released and reused.

// scavWorkload runs a fixed sequence of allocations, frees and Scavenges
// on h, calling check after each step. Allocation errors must wrap
// ErrOutOfMemory.
func scavWorkload(t *testing.T, h *Heap, check func(string)) {
	t.Helper()
	var ps []unsafe.Pointer
	alloc := func(size, n int) {
		for range n {
			p, err := h.Alloc(size)
			if err != nil {
				if !errors.Is(err, ErrOutOfMemory) {
					t.Fatalf("Alloc(%d): %v", size, err)
				}
				continue
			}
			scavTouch(p, size)
			ps = append(ps, p)
		}
		check(fmt.Sprintf("alloc %d x %d", n, size))
	}
	freeAll := func() {
		for _, p := range ps {
			if err := h.Free(p); err != nil {
				t.Fatal(err)
			}
		}
		ps = ps[:0]
		check("free")
	}
	alloc(1<<20, 12)
	alloc(1000, 100)
	alloc(6<<20, 2)
	freeAll()
	h.Scavenge()
	check("scavenge 1")
	alloc(1<<20, 12) // re-commits (strict: mprotect)
	alloc(40<<10, 20)
	freeAll()
	h.Scavenge()
	check("scavenge 2")
	alloc(3<<20, 6)
	freeAll()
}

func TestScavengeFaultSweep(t *testing.T) {
	for _, mode := range []mmap.DecommitMode{DecommitDontNeed, DecommitFree, DecommitStrict} {
		for _, op := range []mmap.Op{mmap.OpReserve, mmap.OpCommit, mmap.OpDecommit, mmap.OpHugePage} {
			// A clean run counts the calls of op.
			fi := mmap.NewFaultInjector(mmap.Real())
			cfg := Config{Reserve: 128 << 20, ScavengeDelay: -1, Decommit: mode, HugePages: true, Kernel: fi}
			h, err := NewHeap(cfg)
			if err != nil {
				t.Fatal(err)
			}
			scavWorkload(t, h, func(string) {})
			h.Close()
			k := fi.Calls(op)
			for n := 1; n <= k; n++ {
				fi := mmap.NewFaultInjector(mmap.Real())
				fi.FailNth(op, n)
				cfg.Kernel = fi
				h, err := NewHeap(cfg)
				if err != nil {
					if !errors.Is(err, ErrOutOfMemory) && !errors.Is(err, mmap.ErrInjected) {
						t.Fatalf("%v %v #%d: NewHeap: %v", mode, op, n, err)
					}
					continue
				}
				scavWorkload(t, h, func(step string) {
					if err := h.Verify(); err != nil {
						t.Fatalf("%v %v #%d, after %s: %v", mode, op, n, step, err)
					}
				})
				// Faults over: everything free goes back, none lost. The
				// injected fault lands in this Scavenge itself when this
				// run makes fewer calls than the clean one (the per-P
				// caches are picked at random in offheap_nolinkname
				// builds), and Scavenge stops at a failure; the fault is
				// one-shot, so a second Scavenge meets none.
				h.Scavenge()
				h.Scavenge()
				st := h.Stats()
				if free := st.HeapIdle - st.HeapReleased; free > uint64(len(h.perPCaches()))*64*PageSize {
					t.Fatalf("%v %v #%d: %d free bytes not released after the faults: %+v", mode, op, n, free, st)
				}
				if op == mmap.OpDecommit && st.ScavengeFailures == 0 && fi.Calls(op) >= n {
					t.Fatalf("%v %v #%d: injected decommit failure not counted", mode, op, n)
				}
				if err := h.Verify(); err != nil {
					t.Fatal(err)
				}
				h.Close()
			}
			t.Logf("%v: %v: swept %d failure points", mode, op, k)
		}
	}
}

// A failed re-commit in strict mode: Alloc returns ErrOutOfMemory, the
// pages go back as released, the heap is unchanged and usable.
func TestStrictCommitFailure(t *testing.T) {
	fi := mmap.NewFaultInjector(mmap.Real())
	h := newScavHeap(t, Config{Reserve: 64 << 20, ScavengeDelay: -1, Decommit: DecommitStrict, Kernel: fi})
	p, err := h.Alloc(4 << 20)
	if err != nil {
		t.Fatal(err)
	}
	h.Free(p)
	h.Scavenge()
	before := h.Stats()
	fi.FailNth(mmap.OpCommit, 1)
	if _, err := h.Alloc(4 << 20); !errors.Is(err, ErrOutOfMemory) || !errors.Is(err, mmap.ErrInjected) {
		t.Fatalf("Alloc with failing commit: %v", err)
	}
	after := h.Stats()
	if after.HeapInuse != before.HeapInuse || after.HeapReleased != before.HeapReleased || after.HeapSys != before.HeapSys {
		t.Fatalf("heap changed:\n%+v\n%+v", before, after)
	}
	scavVerify(t, h)
	q, err := h.Alloc(4 << 20)
	if err != nil {
		t.Fatal(err)
	}
	scavTouch(q, 4<<20)
	scavVerify(t, h)
}

// The background worker meets a failing madvise: it counts the failure,
// keeps the pages committed, and releases them on a later try.
func TestScavengerRetriesAfterFailure(t *testing.T) {
	fi := mmap.NewFaultInjector(mmap.Real())
	h := newScavHeap(t, Config{Reserve: 64 << 20, RetainBytes: -1, RetainFraction: -1,
		ScavengeDelay: 20 * time.Millisecond, Kernel: fi})
	p, err := h.Alloc(8 << 20)
	if err != nil {
		t.Fatal(err)
	}
	scavTouch(p, 8<<20)
	fi.FailNth(mmap.OpDecommit, 1)
	fi.FailNth(mmap.OpDecommit, 2)
	h.Free(p)
	deadline := time.Now().Add(3 * time.Second)
	for {
		st := h.Stats()
		if st.ScavengeFailures >= 2 && st.HeapReleased >= 8<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not released after failures: %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
	scavVerify(t, h)
}
