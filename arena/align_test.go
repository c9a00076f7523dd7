package arena

import (
	"errors"
	"fmt"
	"testing"
	"unsafe"

	"github.com/offheap/offheap/pages"
)

// alignModes are the heap configurations whose paths place objects
// differently: plain spans, Debug's checked slow path, guarded objects
// (which end at a guard page) and profile samples.
var alignModes = []struct {
	name string
	cfg  Config
}{
	{"default", Config{}},
	{"debug", Config{Debug: true}},
	{"guard1", Config{GuardSampleRate: 1}},
	{"profile1", Config{ProfileRate: 1}},
}

var alignSizes = []int{0, 1, 8, 15, 16, 17, 100, 4096, 32768, 32769, 40000, 1 << 20}

// Every mode keeps Alloc's alignment promise, through the Heap, a Cache
// and typed New, and the objects can then be explained and freed. Guarded
// objects above MaxSmallSize used to end at the guard page whatever their
// size, so Alloc(40000) started 960 bytes past a page boundary.
func TestAllocAlignmentEveryMode(t *testing.T) {
	for _, m := range alignModes {
		t.Run(m.name, func(t *testing.T) {
			cfg := m.cfg
			cfg.Reserve, cfg.ScavengeDelay = 256<<20, -1
			h := newTestHeap(t, cfg)
			c := h.NewCache()
			defer c.Close()
			for _, a := range []struct {
				name string
				al   Allocator
				fr   Freer
			}{{"heap", h, h}, {"cache", c, c}} {
				for _, size := range alignSizes {
					// Several objects, so a mode that places only some
					// objects specially (a sample) is likely to hit one.
					var ps []unsafe.Pointer
					for range 3 {
						p, err := a.al.Alloc(size)
						if err != nil {
							t.Fatalf("%s.Alloc(%d): %v", a.name, size, err)
						}
						if got := uintptr(p) % wantAlign(size); got != 0 {
							t.Errorf("%s.Alloc(%d) = %#x: %d mod %d, want aligned",
								a.name, size, p, got, wantAlign(size))
						}
						checkExplained(t, h, p, size)
						checkGuardFaults(t, h, p, size)
						// The whole object is usable.
						if size > 0 {
							b := unsafe.Slice((*byte)(p), size)
							b[0], b[size-1] = 1, 2
						}
						ps = append(ps, p)
					}
					for _, p := range ps {
						if err := a.fr.Free(p); err != nil {
							t.Fatalf("%s.Free(Alloc(%d)): %v", a.name, size, err)
						}
						// A small object's span may be gone once its last
						// object is freed: then the pointer is in no span.
						if err := a.fr.Free(p); !errors.Is(err, ErrDoubleFree) && !errors.Is(err, ErrInvalidPointer) {
							t.Fatalf("second %s.Free(Alloc(%d)) = %v, want ErrDoubleFree or ErrInvalidPointer", a.name, size, err)
						}
					}
				}
				// Typed New of a large array, and its typed Free.
				for range 3 {
					x, err := New[[40000]byte](a.al)
					if err != nil {
						t.Fatal(err)
					}
					if got := uintptr(unsafe.Pointer(x)) % pages.PageSize; got != 0 {
						t.Errorf("New[[40000]byte] via %s = %p: %d mod %d", a.name, x, got, pages.PageSize)
					}
					x[0], x[len(x)-1] = 1, 2
					if err := Free(a.fr, x); err != nil {
						t.Fatalf("typed Free via %s: %v", a.name, err)
					}
				}
			}
			verifyOK(t, h)
		})
	}
}

// checkExplained checks that Explain finds the object at p from its first
// and last byte.
func checkExplained(t *testing.T, h *Heap, p unsafe.Pointer, size int) {
	t.Helper()
	for _, at := range []uintptr{uintptr(p), uintptr(p) + uintptr(max(size, 1)) - 1} {
		info, ok := h.Explain(at)
		if !ok || info.Addr != uintptr(p) {
			t.Errorf("Explain(%#x) in Alloc(%d) at %p = %#x (%s), %v; want the object",
				at, size, p, info.Addr, fmt.Sprint(info), ok)
		}
	}
}

// checkGuardFaults checks, for a guarded object, that the first byte past
// its rounded size (guardObjSize: to 16 bytes, or to whole pages above
// MaxSmallSize) is in the guard page and faults.
func checkGuardFaults(t *testing.T, h *Heap, p unsafe.Pointer, size int) {
	t.Helper()
	if info, ok := h.Explain(uintptr(p)); !ok || !info.Guarded {
		return
	}
	end := uintptr(p) + guardObjSize(uintptr(size))
	if addr, ok := touch(end); !ok || addr != end {
		t.Errorf("guarded Alloc(%d) at %p: write at %#x faulted %v at %#x, want a fault there", size, p, end, ok, addr)
	}
}
