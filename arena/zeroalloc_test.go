package arena

import (
	"fmt"
	"testing"
	"unsafe"

	"github.com/offheap/offheap/mmap"
	"github.com/offheap/offheap/sizeclasses"
)

// TestZeroAtAllocation checks the zero-at-allocation design in every
// Decommit mode, with and without debug mode: a free leaves the object's
// bytes as they were (outside debug mode, where it poisons them), and every
// allocation that reuses a slot returns it zeroed, whether the slot was
// freed by the cache that owns its span (a local free), by another cache
// (a remote free, collected later) or through the Heap. A last round frees
// everything, scavenges (so spans are rebuilt on pages released in that
// mode) and checks the new objects again.
func TestZeroAtAllocation(t *testing.T) {
	modes := []struct {
		name string
		mode mmap.DecommitMode
	}{{"dontneed", DecommitDontNeed}, {"free", DecommitFree}, {"strict", DecommitStrict}}
	for _, m := range modes {
		for _, debug := range []bool{false, true} {
			for _, how := range []string{"local", "remote", "heap"} {
				t.Run(fmt.Sprintf("%s/debug=%v/%s", m.name, debug, how), func(t *testing.T) {
					testZeroAtAllocation(t, m.mode, debug, how)
				})
			}
		}
	}
}

func testZeroAtAllocation(t *testing.T, mode mmap.DecommitMode, debug bool, how string) {
	h := newTestHeap(t, quiet(Config{Reserve: 64 << 20, Decommit: mode, Debug: debug}))
	c, other := h.NewCache(), h.NewCache()
	defer c.Close()
	defer other.Close()
	var a, freer allocFreer = c, c
	switch how {
	case "remote":
		freer = other
	case "heap":
		a, freer = h, h
	}
	for _, size := range []int{8, 48, 512, 4096, 27264} {
		cl := sizeclasses.SizeToClass(uintptr(size))
		n := 2 * int(sizeclasses.Objects(cl))
		seen := map[unsafe.Pointer]bool{}
		reused, checked := 0, 0
		for round := range 4 {
			if round == 3 {
				// Everything goes back, the pages are released, and the
				// next spans are built on them.
				h.Scavenge()
			}
			ptrs := make([]unsafe.Pointer, n)
			for i := range ptrs {
				p, err := a.Alloc(size)
				if err != nil {
					t.Fatal(err)
				}
				if k := firstByteNot(p, size, 0); k >= 0 {
					t.Fatalf("size %d round %d: Alloc = %p (reused %v): byte %d is %#x",
						size, round, p, seen[p], k, bytesAt(p, size)[k])
				}
				if seen[p] {
					reused++
				}
				seen[p] = true
				fillBytes(p, size, 0xFF)
				ptrs[i] = p
			}
			// Free all but the first object (which keeps its span in
			// use, so its freed neighbours can be read), check that the
			// free left one of them alone (or poisoned it), then free it.
			for _, p := range ptrs[1:] {
				if err := freer.Free(p); err != nil {
					t.Fatal(err)
				}
			}
			want := byte(0xFF)
			if debug {
				want = debugPoison
			}
			// Heap.Alloc may serve one round from several per-P caches:
			// the object checked is one in the first object's span.
			for _, q := range ptrs[1:] {
				if !sameSpan(h, ptrs[0], q) {
					continue
				}
				if k := firstByteNot(q, size, want); k >= 0 {
					t.Fatalf("size %d: freed object %p: byte %d is %#x, want %#x left by the free",
						size, q, k, bytesAt(q, size)[k], want)
				}
				checked++
				break
			}
			if err := freer.Free(ptrs[0]); err != nil {
				t.Fatal(err)
			}
			verifyOK(t, h)
		}
		if reused == 0 || checked == 0 {
			t.Fatalf("size %d: %d slots reused, %d freed objects checked; the test checks too little", size, reused, checked)
		}
	}
}

// sameSpan reports whether p and q lie in one span of h.
func sameSpan(h *Heap, p, q unsafe.Pointer) bool {
	return h.spans.Lookup(uintptr(p)) == h.spans.Lookup(uintptr(q))
}
