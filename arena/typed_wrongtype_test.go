package arena

import (
	"errors"
	"strings"
	"testing"
	"unsafe"
)

// TestTypedFreeWrongType: Free[T] of an object whose size class (or, for a
// large object, page count) is not T's is refused with ErrInvalidPointer
// naming both, and leaves the object allocated; the same for FreeSlice
// with a capacity other than the one allocated.
func TestTypedFreeWrongType(t *testing.T) {
	for _, cfg := range []struct {
		name string
		cfg  Config
	}{
		{"plain", Config{Reserve: 256 << 20}},
		{"guarded", Config{Reserve: 256 << 20, GuardSampleRate: 1}},
	} {
		t.Run(cfg.name, func(t *testing.T) {
			h := newTestHeap(t, cfg.cfg)
			c := h.NewCache()
			defer c.Close()
			for _, f := range []interface {
				Allocator
				Freer
			}{h, c} {
				testWrongType(t, h, f)
			}
		})
	}
}

func testWrongType(t *testing.T, h *Heap, f interface {
	Allocator
	Freer
}) {
	t.Helper()
	refused := func(what string, err error, wantSub string) {
		t.Helper()
		if !errors.Is(err, ErrInvalidPointer) || !strings.Contains(err.Error(), wantSub) {
			t.Errorf("%T: %s: %v, want ErrInvalidPointer naming %q", f, what, err, wantSub)
		}
	}
	small, err := New[[64]byte](f)
	if err != nil {
		t.Fatal(err)
	}
	large, err := New[[100 << 10]byte](f)
	if err != nil {
		t.Fatal(err)
	}
	small[0], large[0] = 7, 9
	before := h.Stats().HeapObjects + h.Stats().LargeObjects

	refused("small freed as a larger small type", Free(f, (*[200]byte)(unsafe.Pointer(small))), "[200]uint8")
	refused("small freed as a large type", Free(f, (*[100 << 10]byte)(unsafe.Pointer(small))), "[102400]uint8")
	refused("large freed as a small type", Free(f, (*[64]byte)(unsafe.Pointer(large))), "[64]uint8")
	refused("large freed as a larger large type", Free(f, (*[200 << 10]byte)(unsafe.Pointer(large))), "[204800]uint8")

	s, err := MakeSlice[uint64](f, 10, 100)
	if err != nil {
		t.Fatal(err)
	}
	refused("slice freed with a smaller cap", FreeSlice(f, s[:10:10]), "cap 10")
	refused("slice freed as another element type", FreeSlice(f, unsafe.Slice((*[3]uint64)(unsafe.Pointer(&s[0])), 100)), "cap 100")

	// Nothing was freed: the objects are intact and free as what they are.
	if small[0] != 7 || large[0] != 9 || h.Stats().HeapObjects+h.Stats().LargeObjects != before+1 {
		t.Fatalf("refused frees changed the heap")
	}
	if err := Free(f, small); err != nil {
		t.Fatal(err)
	}
	if err := Free(f, large); err != nil {
		t.Fatal(err)
	}
	// A slice resliced to a shorter length keeps its capacity.
	if err := FreeSlice(f, s[:3]); err != nil {
		t.Fatal(err)
	}
	// The check is by size class: a type of another size in the same
	// class is not told apart (48 and 44 bytes share a class).
	p, err := New[[48]byte](f)
	if err != nil {
		t.Fatal(err)
	}
	if err := Free(f, (*[44]byte)(unsafe.Pointer(p))); err != nil {
		t.Fatalf("same class: %v", err)
	}
	// A bad pointer still gets Free's own error.
	if err := Free(f, (*[64]byte)(unsafe.Pointer(&before))); !errors.Is(err, ErrInvalidPointer) || !strings.Contains(err.Error(), "not in this heap") {
		t.Errorf("foreign pointer: %v", err)
	}
}
