package arena

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"

	"github.com/offheap/offheap/pages"
	"github.com/offheap/offheap/sizeclasses"
)

// badEnv is what a bad-input case works on: a heap with two caches and a
// few live objects, and a second, unrelated heap.
type badEnv struct {
	h, other *Heap
	c, c2    *Cache
}

func (e *badEnv) alloc(t *testing.T, a interface {
	Alloc(int) (unsafe.Pointer, error)
}, size int) unsafe.Pointer {
	t.Helper()
	p, err := a.Alloc(size)
	if err != nil {
		t.Fatalf("Alloc(%d): %v", size, err)
	}
	return p
}

func (e *badEnv) free(t *testing.T, f interface{ Free(unsafe.Pointer) error }, p unsafe.Pointer) {
	t.Helper()
	if err := f.Free(p); err != nil {
		t.Fatalf("Free(%p): %v", p, err)
	}
}

// allocCall turns an allocation into a call that must fail: a pointer
// returned with the error is a failure of its own.
func allocCall(a interface {
	Alloc(int) (unsafe.Pointer, error)
}, size int) func() error {
	return func() error {
		p, err := a.Alloc(size)
		if p != nil {
			return fmt.Errorf("Alloc(%d) returned %p with error %v", size, p, err)
		}
		return err
	}
}

// tailClass returns a size class whose spans end in a gap of at least 8
// bytes after their last object.
func tailClass(t *testing.T) uint8 {
	for cl := uint8(1); cl < sizeclasses.NumClasses; cl++ {
		if sizeclasses.Pages(cl)*pages.PageSize-sizeclasses.Objects(cl)*sizeclasses.Size(cl) >= 8 {
			return cl
		}
	}
	t.Skip("no size class leaves a tail")
	return 0
}

// TestBadInputs checks that every misuse returns its named error and
// changes nothing: Stats stay identical, Verify stays clean and the heap
// stays usable.
func TestBadInputs(t *testing.T) {
	const reserve = 64 << 20
	cases := []struct {
		name string
		// prep sets the stage and returns the call that must fail.
		prep func(t *testing.T, e *badEnv) func() error
		want []error // the error must match every one of these
	}{
		{"double free small via Heap", func(t *testing.T, e *badEnv) func() error {
			p := e.alloc(t, e.h, 64)
			e.alloc(t, e.h, 64) // keeps the span alive
			e.free(t, e.h, p)
			return func() error { return e.h.Free(p) }
		}, []error{ErrDoubleFree}},
		{"double free small via Cache", func(t *testing.T, e *badEnv) func() error {
			p := e.alloc(t, e.c, 64)
			e.alloc(t, e.c, 64)
			e.free(t, e.c, p)
			return func() error { return e.c.Free(p) }
		}, []error{ErrDoubleFree}},
		{"double free small local then remote", func(t *testing.T, e *badEnv) func() error {
			p := e.alloc(t, e.c, 64)
			e.alloc(t, e.c, 64)
			e.free(t, e.c, p)
			return func() error { return e.c2.Free(p) }
		}, []error{ErrDoubleFree}},
		{"double free small remote twice", func(t *testing.T, e *badEnv) func() error {
			p := e.alloc(t, e.c, 64)
			e.alloc(t, e.c, 64)
			e.free(t, e.c2, p) // pending in the freed bitmap of c's span
			return func() error { return e.c2.Free(p) }
		}, []error{ErrDoubleFree}},
		{"double free small remote then Heap", func(t *testing.T, e *badEnv) func() error {
			p := e.alloc(t, e.c, 64)
			e.alloc(t, e.c, 64)
			e.free(t, e.c2, p)
			return func() error { return e.h.Free(p) }
		}, []error{ErrDoubleFree}},
		{"double free small remote then owner", func(t *testing.T, e *badEnv) func() error {
			p := e.alloc(t, e.c, 64)
			e.alloc(t, e.c, 64)
			e.free(t, e.c2, p)
			return func() error { return e.c.Free(p) }
		}, []error{ErrDoubleFree}},
		{"double free in a central span", func(t *testing.T, e *badEnv) func() error {
			p := e.alloc(t, e.c, 64)
			e.alloc(t, e.c, 64)
			if err := e.c.Close(); err != nil { // the span goes to the central list
				t.Fatal(err)
			}
			e.free(t, e.h, p)
			return func() error { return e.c2.Free(p) }
		}, []error{ErrDoubleFree}},
		{"double free of the first object of a freed span", func(t *testing.T, e *badEnv) func() error {
			c := e.h.NewCache()
			p := e.alloc(t, c, 2048) // a fresh span: p is its base
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			e.free(t, e.h, p) // the last object: the span goes back
			return func() error { return e.h.Free(p) }
		}, []error{ErrDoubleFree}},
		{"double free large via Heap", func(t *testing.T, e *badEnv) func() error {
			p := e.alloc(t, e.h, 100<<10)
			e.free(t, e.h, p)
			return func() error { return e.h.Free(p) }
		}, []error{ErrDoubleFree}},
		{"double free large via Cache", func(t *testing.T, e *badEnv) func() error {
			p := e.alloc(t, e.c, 1<<20)
			e.free(t, e.c, p)
			return func() error { return e.c2.Free(p) }
		}, []error{ErrDoubleFree}},
		{"double free large after Scavenge", func(t *testing.T, e *badEnv) func() error {
			p := e.alloc(t, e.h, 1<<20)
			e.free(t, e.h, p)
			if e.h.Scavenge() == 0 {
				t.Fatal("Scavenge released nothing after a 1 MiB free")
			}
			return func() error { return e.h.Free(p) }
		}, []error{ErrDoubleFree}},

		{"nil via Heap", func(t *testing.T, e *badEnv) func() error {
			return func() error { return e.h.Free(nil) }
		}, []error{ErrInvalidPointer}},
		{"nil via Cache", func(t *testing.T, e *badEnv) func() error {
			return func() error { return e.c.Free(nil) }
		}, []error{ErrInvalidPointer}},
		{"Go heap pointer", func(t *testing.T, e *badEnv) func() error {
			p := unsafe.Pointer(new([64]byte))
			return func() error { return e.h.Free(p) }
		}, []error{ErrInvalidPointer}},
		{"stack address", func(t *testing.T, e *badEnv) func() error {
			return func() error {
				var local [64]byte
				return e.c.Free(unsafe.Pointer(&local[16]))
			}
		}, []error{ErrInvalidPointer}},
		{"pointer into another heap", func(t *testing.T, e *badEnv) func() error {
			q := e.alloc(t, e.other, 64)
			t.Cleanup(func() {
				if err := e.other.Free(q); err != nil {
					t.Errorf("the other heap's object was hurt: %v", err)
				}
			})
			return func() error { return e.h.Free(q) }
		}, []error{ErrInvalidPointer}},
		{"large pointer into another heap", func(t *testing.T, e *badEnv) func() error {
			q := e.alloc(t, e.other, 1<<20)
			return func() error { return e.c.Free(q) }
		}, []error{ErrInvalidPointer}},
		{"never-grown space", func(t *testing.T, e *badEnv) func() error {
			p := addrPointer(e.h.limit - pages.PageSize)
			return func() error { return e.h.Free(p) }
		}, []error{ErrInvalidPointer}},
		{"just past the grown space", func(t *testing.T, e *badEnv) func() error {
			p := addrPointer(e.h.base + uintptr(e.h.Stats().HeapSys))
			return func() error { return e.c.Free(p) }
		}, []error{ErrInvalidPointer}},
		{"grown free page", func(t *testing.T, e *badEnv) func() error {
			a := e.h.base + uintptr(e.h.Stats().HeapSys) - pages.PageSize
			if e.h.spans.Lookup(a) != nil {
				t.Fatalf("the last grown page %#x is in a span", a)
			}
			return func() error { return e.h.Free(addrPointer(a)) }
		}, []error{ErrInvalidPointer}},
		{"one past the end of the reservation", func(t *testing.T, e *badEnv) func() error {
			p := addrPointer(e.h.limit)
			return func() error { return e.h.Free(p) }
		}, []error{ErrInvalidPointer}},

		{"interior small +1", func(t *testing.T, e *badEnv) func() error {
			p := e.alloc(t, e.h, 64)
			return func() error { return e.h.Free(unsafe.Add(p, 1)) }
		}, []error{ErrInvalidPointer}},
		{"interior small +8", func(t *testing.T, e *badEnv) func() error {
			p := e.alloc(t, e.c, 64)
			return func() error { return e.c.Free(unsafe.Add(p, 8)) }
		}, []error{ErrInvalidPointer}},
		{"interior small last byte, remote", func(t *testing.T, e *badEnv) func() error {
			p := e.alloc(t, e.c, 1000)
			last := int(objExtent(1000)) - 1
			return func() error { return e.c2.Free(unsafe.Add(p, last)) }
		}, []error{ErrInvalidPointer}},
		{"interior small of a freed slot", func(t *testing.T, e *badEnv) func() error {
			p := e.alloc(t, e.c, 64)
			e.alloc(t, e.c, 64)
			e.free(t, e.c, p)
			return func() error { return e.c.Free(unsafe.Add(p, 16)) }
		}, []error{ErrInvalidPointer}},
		{"span tail past the last object", func(t *testing.T, e *badEnv) func() error {
			cl := tailClass(t)
			c := e.h.NewCache()
			t.Cleanup(func() { c.Close() })
			base := e.alloc(t, c, int(sizeclasses.Size(cl))) // first slot of a fresh span
			tail := sizeclasses.Objects(cl) * sizeclasses.Size(cl)
			return func() error { return c.Free(unsafe.Add(base, tail)) }
		}, []error{ErrInvalidPointer}},
		{"interior large +1", func(t *testing.T, e *badEnv) func() error {
			p := e.alloc(t, e.h, 100<<10)
			return func() error { return e.h.Free(unsafe.Add(p, 1)) }
		}, []error{ErrInvalidPointer}},
		{"interior large second page", func(t *testing.T, e *badEnv) func() error {
			p := e.alloc(t, e.c, 100<<10)
			return func() error { return e.c2.Free(unsafe.Add(p, pages.PageSize)) }
		}, []error{ErrInvalidPointer}},
		{"interior large last page", func(t *testing.T, e *badEnv) func() error {
			p := e.alloc(t, e.h, 1<<20)
			return func() error { return e.h.Free(unsafe.Add(p, 1<<20-pages.PageSize)) }
		}, []error{ErrInvalidPointer}},
		{"interior of a freed large object", func(t *testing.T, e *badEnv) func() error {
			p := e.alloc(t, e.h, 1<<20)
			e.free(t, e.h, p)
			return func() error { return e.h.Free(unsafe.Add(p, pages.PageSize)) }
		}, []error{ErrInvalidPointer}},

		{"Free after Heap Close", func(t *testing.T, e *badEnv) func() error {
			p := e.alloc(t, e.h, 64)
			if err := e.h.Close(); err != nil {
				t.Fatal(err)
			}
			return func() error { return e.h.Free(p) }
		}, []error{ErrClosed}},
		{"Alloc after Heap Close", func(t *testing.T, e *badEnv) func() error {
			if err := e.h.Close(); err != nil {
				t.Fatal(err)
			}
			return allocCall(e.h, 64)
		}, []error{ErrClosed}},
		{"large Alloc after Heap Close", func(t *testing.T, e *badEnv) func() error {
			if err := e.h.Close(); err != nil {
				t.Fatal(err)
			}
			return allocCall(e.h, 1<<20)
		}, []error{ErrClosed}},
		{"second Heap Close", func(t *testing.T, e *badEnv) func() error {
			if err := e.h.Close(); err != nil {
				t.Fatal(err)
			}
			return e.h.Close
		}, []error{ErrClosed}},
		{"Scavenge and NewCache after Heap Close", func(t *testing.T, e *badEnv) func() error {
			if err := e.h.Close(); err != nil {
				t.Fatal(err)
			}
			return func() error {
				if n := e.h.Scavenge(); n != 0 {
					return fmt.Errorf("Scavenge after Close released %d bytes", n)
				}
				return allocCall(e.h.NewCache(), 64)()
			}
		}, []error{ErrClosed}},
		{"Alloc on closed Cache", func(t *testing.T, e *badEnv) func() error {
			if err := e.c.Close(); err != nil {
				t.Fatal(err)
			}
			return allocCall(e.c, 64)
		}, []error{ErrClosed}},
		{"large Alloc on closed Cache", func(t *testing.T, e *badEnv) func() error {
			if err := e.c.Close(); err != nil {
				t.Fatal(err)
			}
			return allocCall(e.c, 1<<20)
		}, []error{ErrClosed}},
		{"Free on closed Cache", func(t *testing.T, e *badEnv) func() error {
			p := e.alloc(t, e.c, 64)
			if err := e.c.Close(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { e.h.Free(p) })
			return func() error { return e.c.Free(p) }
		}, []error{ErrClosed}},
		{"second Cache Close", func(t *testing.T, e *badEnv) func() error {
			if err := e.c.Close(); err != nil {
				t.Fatal(err)
			}
			return e.c.Close
		}, []error{ErrClosed}},
		{"Cache Alloc after Heap Close", func(t *testing.T, e *badEnv) func() error {
			if err := e.h.Close(); err != nil {
				t.Fatal(err)
			}
			return allocCall(e.c, 64)
		}, []error{ErrClosed}},
		{"Cache Free after Heap Close", func(t *testing.T, e *badEnv) func() error {
			p := e.alloc(t, e.c, 64)
			if err := e.h.Close(); err != nil {
				t.Fatal(err)
			}
			return func() error { return e.c.Free(p) }
		}, []error{ErrClosed}},
		{"Cache Close after Heap Close", func(t *testing.T, e *badEnv) func() error {
			if err := e.h.Close(); err != nil {
				t.Fatal(err)
			}
			return e.c.Close
		}, []error{ErrClosed}},

		{"negative size via Heap", func(t *testing.T, e *badEnv) func() error {
			return allocCall(e.h, -1)
		}, []error{ErrInvalidSize}},
		{"negative size via Cache", func(t *testing.T, e *badEnv) func() error {
			return allocCall(e.c, -1)
		}, []error{ErrInvalidSize}},
		{"MinInt size", func(t *testing.T, e *badEnv) func() error {
			return allocCall(e.h, math.MinInt)
		}, []error{ErrInvalidSize}},
		// Sizes no reservation could hold are both invalid and out of memory.
		{"1<<62 via Heap", func(t *testing.T, e *badEnv) func() error {
			return allocCall(e.h, 1<<62)
		}, []error{ErrInvalidSize, ErrOutOfMemory}},
		{"MaxInt via Heap", func(t *testing.T, e *badEnv) func() error {
			return allocCall(e.h, math.MaxInt)
		}, []error{ErrInvalidSize, ErrOutOfMemory}},
		{"MaxInt via Cache", func(t *testing.T, e *badEnv) func() error {
			return allocCall(e.c, math.MaxInt)
		}, []error{ErrInvalidSize, ErrOutOfMemory}},
		{"reservation + 1", func(t *testing.T, e *badEnv) func() error {
			return allocCall(e.c, reserve+1)
		}, []error{ErrInvalidSize, ErrOutOfMemory}},
		{"reservation + 1 page - 1", func(t *testing.T, e *badEnv) func() error {
			return allocCall(e.h, reserve+pages.PageSize-1)
		}, []error{ErrInvalidSize, ErrOutOfMemory}},
		// The whole reservation is a valid size, but part of it is taken.
		{"whole reservation while in use", func(t *testing.T, e *badEnv) func() error {
			return allocCall(e.h, reserve)
		}, []error{ErrOutOfMemory}},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := &badEnv{
				h:     newTestHeap(t, quiet(Config{Reserve: reserve})),
				other: newTestHeap(t, quiet(Config{Reserve: reserve})),
			}
			e.c, e.c2 = e.h.NewCache(), e.h.NewCache()
			// Some unrelated live objects, small and large, in all three.
			for _, a := range []interface {
				Alloc(int) (unsafe.Pointer, error)
			}{e.h, e.c, e.c2} {
				for _, n := range []int{8, 64, 500, 3000, 40 << 10} {
					fillBytes(e.alloc(t, a, n), n, 0x5A)
				}
			}
			call := tc.prep(t, e)
			before := e.h.Stats()
			err := call()
			if err == nil {
				t.Fatalf("got no error, want %v", tc.want)
			}
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("got %v, want errors.Is %v", err, w)
				}
			}
			if d := cmp.Diff(before, e.h.Stats()); d != "" {
				t.Errorf("the failed call changed Stats (-before +after):\n%s", d)
			}
			if e.h.closed.Load() {
				if err := e.h.Verify(); !errors.Is(err, ErrClosed) {
					t.Errorf("Verify after Close: %v, want ErrClosed", err)
				}
				return
			}
			verifyOK(t, e.h)
			// Still usable.
			for _, n := range []int{64, 100 << 10} {
				p, err := e.h.Alloc(n)
				if err != nil {
					t.Fatalf("Alloc(%d) after the bad call: %v", n, err)
				}
				if err := e.h.Free(p); err != nil {
					t.Fatalf("Free after the bad call: %v", err)
				}
			}
			verifyOK(t, e.h)
		})
	}
}

// TestBadConfig checks that out-of-range Config fields are refused.
func TestBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{MemoryLimit: -1},
		{MemoryLimit: math.MinInt64, Reserve: 64 << 20},
		{Reserve: -1},
		{Reserve: math.MinInt64},
		{Reserve: -(64 << 20), MemoryLimit: 64 << 20},
	} {
		h, err := NewHeap(cfg)
		if !errors.Is(err, ErrInvalidConfig) || h != nil {
			t.Errorf("NewHeap(%+v) = %p, %v; want nil, ErrInvalidConfig", cfg, h, err)
			if h != nil {
				h.Close()
			}
		}
	}
}
