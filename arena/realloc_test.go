package arena

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/offheap/offheap/pages"
	"github.com/offheap/offheap/sizeclasses"
)

// objUsable is what UsableSize must say for an n-byte object: its class
// size when small (0 lands in class 1), whole pages when large.
func objUsable(n int) int { return int(objExtent(n)) }

// TestUsableSize checks UsableSize against the size-class table for small
// sizes around every class boundary and for large ones, through the Heap
// and a Cache, and that the whole usable size can be written.
func TestUsableSize(t *testing.T) {
	h := newTestHeap(t, quiet(Config{Reserve: 64 << 20}))
	c := h.NewCache()
	defer c.Close()
	var sizes []int
	for cl := uint8(1); cl < sizeclasses.NumClasses; cl++ {
		s := int(sizeclasses.Size(cl))
		sizes = append(sizes, s-1, s, s+1)
	}
	sizes = append(sizes, 0, 40<<10, 64<<10, 64<<10+1, 1<<20)
	for _, n := range sizes {
		for _, a := range []allocFreer{h, c} {
			p, err := a.Alloc(n)
			if err != nil {
				t.Fatalf("Alloc(%d): %v", n, err)
			}
			got, err := h.UsableSize(p)
			if err != nil || got != objUsable(n) {
				t.Fatalf("UsableSize of Alloc(%d) = %d, %v; want %d", n, got, err, objUsable(n))
			}
			if got2, err := c.UsableSize(p); got2 != got || err != nil {
				t.Fatalf("Cache.UsableSize of Alloc(%d) = %d, %v; want %d", n, got2, err, got)
			}
			fillBytes(p, got, 0xA5) // all of it is the caller's
			if err := a.Free(p); err != nil {
				t.Fatal(err)
			}
		}
	}
	verifyOK(t, h)
}

// TestUsableSizeGuarded checks that a guarded object's usable size is its
// rounded size, all of which lies before the guard page.
func TestUsableSizeGuarded(t *testing.T) {
	h := newTestHeap(t, quiet(Config{Reserve: 64 << 20, GuardSampleRate: 1}))
	for _, n := range []int{1, 20, 100, 5000, 40 << 10} {
		p, err := h.Alloc(n)
		if err != nil {
			t.Fatal(err)
		}
		got, err := h.UsableSize(p)
		if err != nil || got != int(guardObjSize(uintptr(n))) {
			t.Fatalf("UsableSize of guarded Alloc(%d) = %d, %v; want %d", n, got, err, guardObjSize(uintptr(n)))
		}
		fillBytes(p, got&^7, 0x11) // would fault past the guard page
		if q, err := h.Realloc(p, got); q != p || err != nil {
			t.Fatalf("Realloc of a guarded object to its usable size %d moved it: %p -> %p, %v", got, p, q, err)
		}
		if err := h.Free(p); err != nil {
			t.Fatal(err)
		}
	}
	if st := h.Stats(); st.GuardedObjects != 0 {
		t.Fatalf("%d guarded objects left", st.GuardedObjects)
	}
	verifyOK(t, h)
}

// TestReallocInPlaceAndMove checks where Realloc puts the object: in place
// within the size class or page count, moved otherwise, with the contents
// kept, the rest zero, and the old object freed on a move.
func TestReallocInPlaceAndMove(t *testing.T) {
	h := newTestHeap(t, quiet(Config{Reserve: 128 << 20}))
	c := h.NewCache()
	defer c.Close()
	cases := []struct{ from, to int }{
		{100, 110}, {110, 97}, // class 112 both ways: in place
		{100, 200}, {200, 100}, // other classes: move
		{0, 8}, {8, 0}, {24, 0}, // 0 is class 1
		{1000, 40 << 10}, {40 << 10, 1000}, // small <-> large
		{40 << 10, 48 << 10}, {48 << 10, 40<<10 + 1}, // 5 pages... 6 pages: see want
		{64 << 10, 60 << 10}, {60 << 10, 64 << 10}, // 8 pages both: in place
		{1 << 20, 2 << 20}, {2 << 20, 1 << 20},
	}
	for _, tc := range cases {
		for _, r := range []interface {
			allocFreer
			Realloc(unsafe.Pointer, int) (unsafe.Pointer, error)
		}{h, c} {
			name := fmt.Sprintf("%T/%d->%d", r, tc.from, tc.to)
			p, err := r.Alloc(tc.from)
			if err != nil {
				t.Fatal(err)
			}
			writePattern(p, tc.from&^7, 7)
			before := h.Stats()
			q, err := r.Realloc(p, tc.to)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			inPlace := objClass(tc.from) == objClass(tc.to) && objExtent(tc.from) == objExtent(tc.to)
			if (q == p) != inPlace {
				t.Fatalf("%s: moved %v (p %p, q %p), want in place %v", name, q != p, p, q, inPlace)
			}
			kept := min(tc.from, tc.to) &^ 7
			if i := findPatternError(q, kept, 7); i >= 0 {
				t.Fatalf("%s: byte %d of the kept contents differs", name, i)
			}
			usable, err := h.UsableSize(q)
			if err != nil || usable != objUsable(tc.to) {
				t.Fatalf("%s: UsableSize after = %d, %v, want %d", name, usable, err, objUsable(tc.to))
			}
			if i := nonZero(q, tc.to, usable); i >= 0 {
				t.Fatalf("%s: byte %d past the new size is not zero", name, i)
			}
			after := h.Stats()
			if inPlace {
				if d := cmp.Diff(before, after); d != "" {
					t.Fatalf("%s: an in-place Realloc changed Stats:\n%s", name, d)
				}
			} else {
				if after.Mallocs != before.Mallocs+1 || after.Frees != before.Frees+1 || after.HeapObjects != before.HeapObjects {
					t.Fatalf("%s: a move counted %d mallocs, %d frees", name, after.Mallocs-before.Mallocs, after.Frees-before.Frees)
				}
				if err := h.Free(p); !errors.Is(err, ErrDoubleFree) && !(errors.Is(err, ErrInvalidPointer) && tc.from > sizeclasses.MaxSmallSize) {
					t.Fatalf("%s: freeing the old object after a move: %v, want it already free", name, err)
				}
			}
			if err := r.Free(q); err != nil {
				t.Fatalf("%s: Free: %v", name, err)
			}
		}
	}
	if err := statsIdentities(h.Stats()); err != nil {
		t.Fatal(err)
	}
	if st := h.Stats(); st.HeapObjects != 0 {
		t.Fatalf("%d objects left", st.HeapObjects)
	}
	verifyOK(t, h)
}

// TestReallocNilAndZero pins the two edge cases: Realloc(nil, n) is
// Alloc(n), Realloc(p, 0) a live 0-byte object, never nil.
func TestReallocNilAndZero(t *testing.T) {
	h := newTestHeap(t, quiet(Config{Reserve: 64 << 20}))
	p, err := h.Realloc(nil, 300)
	if err != nil || p == nil {
		t.Fatalf("Realloc(nil, 300) = %p, %v", p, err)
	}
	if n, err := h.UsableSize(p); n != objUsable(300) || err != nil {
		t.Fatalf("UsableSize = %d, %v", n, err)
	}
	if i := firstByteNot(p, objUsable(300), 0); i >= 0 {
		t.Fatalf("Realloc(nil) byte %d not zero", i)
	}
	z, err := h.Realloc(p, 0)
	if err != nil || z == nil || z == p {
		t.Fatalf("Realloc(p, 0) = %p, %v (p %p): want a new 0-byte object", z, err, p)
	}
	if n, _ := h.UsableSize(z); n != objUsable(0) {
		t.Fatalf("0-byte object usable %d", n)
	}
	if z2, err := h.Realloc(z, 0); z2 != z || err != nil {
		t.Fatalf("Realloc of a 0-byte object to 0 = %p, %v, want %p in place", z2, err, z)
	}
	if err := h.Free(z); err != nil {
		t.Fatal(err)
	}
	if st := h.Stats(); st.HeapObjects != 0 {
		t.Fatalf("%d objects left", st.HeapObjects)
	}
}

// TestReallocBadInputs runs every refused Realloc, UsableSize, view and
// slice growth through the bad-input harness's checks: the named error,
// Stats unchanged, Verify clean, and the object in question untouched.
func TestReallocBadInputs(t *testing.T) {
	const reserve = 64 << 20
	type env struct {
		badEnv
		// keep is an object that must keep its contents: 512 bytes of
		// pattern 9, checked after the failed call.
		keep unsafe.Pointer
	}
	cases := []struct {
		name string
		prep func(t *testing.T, e *env) func() error
		want []error
	}{
		{"Realloc negative size", func(t *testing.T, e *env) func() error {
			return func() error { return reallocErr(e.h.Realloc(e.keep, -1)) }
		}, []error{ErrInvalidSize}},
		{"Realloc beyond the reservation", func(t *testing.T, e *env) func() error {
			return func() error { return reallocErr(e.h.Realloc(e.keep, reserve+1)) }
		}, []error{ErrOutOfMemory}},
		{"Realloc through a Cache, no room", func(t *testing.T, e *env) func() error {
			return func() error { return reallocErr(e.c.Realloc(e.keep, reserve-pages.PageSize)) }
		}, []error{ErrOutOfMemory}},
		{"Realloc interior pointer", func(t *testing.T, e *env) func() error {
			return func() error { return reallocErr(e.h.Realloc(unsafe.Add(e.keep, 16), 1000)) }
		}, []error{ErrInvalidPointer}},
		{"Realloc freed small", func(t *testing.T, e *env) func() error {
			p := e.alloc(t, e.h, 512)
			e.free(t, e.h, p)
			return func() error { return reallocErr(e.c.Realloc(p, 1000)) }
		}, []error{ErrDoubleFree}},
		{"Realloc freed large", func(t *testing.T, e *env) func() error {
			p := e.alloc(t, e.h, 100<<10)
			e.free(t, e.h, p)
			return func() error { return reallocErr(e.h.Realloc(p, 10)) }
		}, []error{ErrDoubleFree}},
		{"Realloc inside a large object", func(t *testing.T, e *env) func() error {
			p := e.alloc(t, e.h, 100<<10)
			return func() error { return reallocErr(e.h.Realloc(unsafe.Add(p, pages.PageSize), 10)) }
		}, []error{ErrInvalidPointer}},
		{"Realloc Go memory", func(t *testing.T, e *env) func() error {
			b := make([]byte, 64)
			return func() error { return reallocErr(e.h.Realloc(unsafe.Pointer(&b[0]), 10)) }
		}, []error{ErrInvalidPointer}},
		{"Realloc another heap's object", func(t *testing.T, e *env) func() error {
			p := e.alloc(t, e.other, 64)
			return func() error { return reallocErr(e.h.Realloc(p, 100)) }
		}, []error{ErrInvalidPointer}},
		{"Realloc region memory", func(t *testing.T, e *env) func() error {
			r := e.h.NewRegion()
			p := e.alloc(t, r, 64)
			t.Cleanup(func() { _ = r.Free() })
			return func() error { return reallocErr(e.h.Realloc(p, 100)) }
		}, []error{ErrInvalidPointer}},
		{"Realloc through a closed Cache", func(t *testing.T, e *env) func() error {
			c := e.h.NewCache()
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			return func() error { return reallocErr(c.Realloc(e.keep, 1000)) }
		}, []error{ErrClosed}},
		{"UsableSize nil", func(t *testing.T, e *env) func() error {
			return func() error { _, err := e.h.UsableSize(nil); return err }
		}, []error{ErrInvalidPointer}},
		{"UsableSize freed", func(t *testing.T, e *env) func() error {
			p := e.alloc(t, e.h, 64)
			e.free(t, e.h, p)
			return func() error { _, err := e.c.UsableSize(p); return err }
		}, []error{ErrDoubleFree}},
		{"UsableSize interior", func(t *testing.T, e *env) func() error {
			return func() error { _, err := e.h.UsableSize(unsafe.Add(e.keep, 8)); return err }
		}, []error{ErrInvalidPointer}},
		{"View past the object", func(t *testing.T, e *env) func() error {
			return func() error { _, err := View[uint64](e.h, HandleOf(e.keep), 512/8+1); return err }
		}, []error{ErrInvalidSize}},
		{"View negative", func(t *testing.T, e *env) func() error {
			return func() error { _, err := Bytes(e.h, HandleOf(e.keep), -1); return err }
		}, []error{ErrInvalidSize}},
		{"View of a pointer type", func(t *testing.T, e *env) func() error {
			return func() error { _, err := View[*int](e.h, HandleOf(e.keep), 1); return err }
		}, []error{ErrPointerType}},
		{"View nil handle", func(t *testing.T, e *env) func() error {
			return func() error { _, err := Bytes(e.h, 0, 0); return err }
		}, []error{ErrInvalidPointer}},
		{"View freed", func(t *testing.T, e *env) func() error {
			p := e.alloc(t, e.h, 64)
			e.free(t, e.h, p)
			return func() error { _, err := Bytes(e.h, HandleOf(p), 1); return err }
		}, []error{ErrDoubleFree}},
		{"View past a region span", func(t *testing.T, e *env) func() error {
			r := e.h.NewRegion()
			p := e.alloc(t, r, 64)
			t.Cleanup(func() { _ = r.Free() })
			return func() error { _, err := Bytes(e.h, HandleOf(p), regionChunkPages*pages.PageSize+1); return err }
		}, []error{ErrInvalidSize}},
		{"Append to Go memory", func(t *testing.T, e *env) func() error {
			s := make([]uint64, 1, 1)
			return func() error { _, err := Append(e.h, s, 1, 2); return err }
		}, []error{ErrInvalidPointer}},
		{"Append to a resliced slice", func(t *testing.T, e *env) func() error {
			s := unsafe.Slice((*uint64)(e.keep), 512/8)[1:]
			return func() error { _, err := Append(e.c, s, 1); return err }
		}, []error{ErrInvalidPointer}},
		{"Append to a freed slice", func(t *testing.T, e *env) func() error {
			s, err := MakeSlice[uint64](e.h, 4, 4)
			if err != nil {
				t.Fatal(err)
			}
			if err := FreeSlice(e.h, s); err != nil {
				t.Fatal(err)
			}
			return func() error { _, err := Append(e.h, s, 1); return err }
		}, []error{ErrDoubleFree}},
		{"Append of a pointer type", func(t *testing.T, e *env) func() error {
			return func() error { _, err := Append[*int](e.h, nil, nil); return err }
		}, []error{ErrPointerType}},
		{"Grow negative", func(t *testing.T, e *env) func() error {
			return func() error { _, err := Grow[uint64](e.h, nil, -1); return err }
		}, []error{ErrInvalidSize}},
		{"Grow out of memory", func(t *testing.T, e *env) func() error {
			s := unsafe.Slice((*uint64)(e.keep), 512/8)
			return func() error { _, err := Grow(e.h, s, reserve/8); return err }
		}, []error{ErrOutOfMemory}},
		{"Grow overflowing", func(t *testing.T, e *env) func() error {
			s := unsafe.Slice((*uint64)(e.keep), 512/8)
			return func() error { _, err := Grow(e.h, s, maxAllocSize/8); return err }
		}, []error{ErrInvalidSize}},
		{"Realloc after Close", func(t *testing.T, e *env) func() error {
			return func() error {
				if err := e.h.Close(); err != nil {
					return err
				}
				return reallocErr(e.h.Realloc(e.keep, 1000))
			}
		}, []error{ErrClosed}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := &env{badEnv: badEnv{
				h:     newTestHeap(t, quiet(Config{Reserve: reserve})),
				other: newTestHeap(t, quiet(Config{Reserve: reserve})),
			}}
			e.c, e.c2 = e.h.NewCache(), e.h.NewCache()
			for _, a := range []allocFreer{e.h, e.c, e.c2} {
				for _, n := range []int{8, 64, 500, 3000, 40 << 10} {
					fillBytes(e.alloc(t, a, n), n, 0x5A)
				}
			}
			e.keep = e.alloc(t, e.h, 512)
			writePattern(e.keep, 512, 9)
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
				return
			}
			if i := findPatternError(e.keep, 512, 9); i >= 0 {
				t.Errorf("the failed call changed byte %d of the object", i)
			}
			if n, err := e.h.UsableSize(e.keep); n != 512 || err != nil {
				t.Errorf("the object is no longer live: UsableSize %d, %v", n, err)
			}
			verifyOK(t, e.h)
		})
	}
}

// reallocErr turns a Realloc that must fail into its error; a pointer
// returned with the error is a failure of its own.
func reallocErr(p unsafe.Pointer, err error) error {
	if p != nil {
		return fmt.Errorf("Realloc returned %p with error %v", p, err)
	}
	return err
}

// TestReallocOutOfMemoryLimit fills a heap to its MemoryLimit and checks
// that a Realloc needing more fails with ErrOutOfMemory and leaves the
// object as it was, while one that stays in place still succeeds.
func TestReallocOutOfMemoryLimit(t *testing.T) {
	const limit = 8 << 20
	h := newTestHeap(t, quiet(Config{Reserve: 64 << 20, MemoryLimit: limit}))
	p, err := h.Alloc(limit / 2)
	if err != nil {
		t.Fatal(err)
	}
	writePattern(p, limit/2, 3)
	before := h.Stats()
	q, err := h.Realloc(p, limit)
	if !errors.Is(err, ErrOutOfMemory) || q != nil {
		t.Fatalf("Realloc past the limit = %p, %v; want ErrOutOfMemory", q, err)
	}
	// Alloc past the limit tries scavenging first, which records its lock
	// hold time: that is all it may change.
	if d := cmp.Diff(before, h.Stats(), cmpopts.IgnoreFields(Stats{}, "ScavengeMaxLockHold")); d != "" {
		t.Fatalf("the failed Realloc changed Stats:\n%s", d)
	}
	if i := findPatternError(p, limit/2, 3); i >= 0 {
		t.Fatalf("the failed Realloc changed byte %d", i)
	}
	if q, err := h.Realloc(p, limit/2-100); q != p || err != nil {
		t.Fatalf("in-place Realloc at the limit = %p, %v; want %p", q, err, p)
	}
	if err := h.Free(p); err != nil {
		t.Fatal(err)
	}
	verifyOK(t, h)
}

// TestReallocModel drives random Realloc sequences on several objects
// against a model of their contents ([]byte of the size last asked for):
// after each call the kept bytes must match, the bytes from the new size
// to the usable size must be zero, and moves must happen exactly when the
// class (or page count) changes.
func TestReallocModel(t *testing.T) {
	h := newTestHeap(t, quiet(Config{Reserve: 128 << 20}))
	c := h.NewCache()
	defer c.Close()
	steps := 3000
	if testing.Short() {
		steps = 600
	}
	rng := rand.New(rand.NewPCG(1, 2))
	reallocModel(t, h, c, rng, steps)
}

// reallocModel is TestReallocModel's and FuzzRealloc's body.
func reallocModel(t *testing.T, h *Heap, c *Cache, rng *rand.Rand, steps int) {
	t.Helper()
	type obj struct {
		p     unsafe.Pointer
		model []byte
	}
	objs := make([]obj, 8)
	randSize := func() int {
		switch rng.IntN(10) {
		case 0:
			return 0
		case 1:
			return sizeclasses.MaxSmallSize + rng.IntN(100<<10)
		default:
			return rng.IntN(2048)
		}
	}
	for step := 0; step < steps; step++ {
		o := &objs[rng.IntN(len(objs))]
		n := randSize()
		var q unsafe.Pointer
		var err error
		if rng.IntN(2) == 0 {
			q, err = h.Realloc(o.p, n)
		} else {
			q, err = c.Realloc(o.p, n)
		}
		if err != nil {
			t.Fatalf("step %d: Realloc(%p, %d): %v", step, o.p, n, err)
		}
		if o.p != nil {
			old := len(o.model)
			inPlace := objClass(old) == objClass(n) && objExtent(old) == objExtent(n)
			if (q == o.p) != inPlace {
				t.Fatalf("step %d: %d -> %d bytes moved %v, want in place %v", step, old, n, q != o.p, inPlace)
			}
		}
		if len(o.model) > n {
			o.model = o.model[:n]
		} else {
			o.model = append(o.model, make([]byte, n-len(o.model))...)
		}
		got := unsafe.Slice((*byte)(q), n)
		if d := firstDiff(got, o.model); d >= 0 {
			t.Fatalf("step %d: byte %d of %d is %#x, model %#x", step, d, n, got[d], o.model[d])
		}
		usable, err := h.UsableSize(q)
		if err != nil {
			t.Fatal(err)
		}
		if i := nonZero(q, n, usable); i >= 0 {
			t.Fatalf("step %d: byte %d past the size %d is not zero", step, i, n)
		}
		// New contents in a random part, in object and model alike.
		if n > 0 {
			from := rng.IntN(n)
			to := from + rng.IntN(min(n-from, 256)+1)
			for i := from; i < to; i++ {
				b := byte(rng.Uint32())
				got[i], o.model[i] = b, b
			}
		}
		o.p = q
	}
	for _, o := range objs {
		if o.p != nil {
			if err := h.Free(o.p); err != nil {
				t.Fatal(err)
			}
		}
	}
	if st := h.Stats(); st.HeapObjects != 0 {
		t.Fatalf("%d objects left", st.HeapObjects)
	}
	if err := statsIdentities(h.Stats()); err != nil {
		t.Fatal(err)
	}
	verifyOK(t, h)
}

// nonZero returns the index of the first non-zero byte at p in [from,
// to), or -1; byte by byte, as from need not be aligned.
func nonZero(p unsafe.Pointer, from, to int) int {
	for i := from; i < to; i++ {
		if *(*byte)(unsafe.Add(p, i)) != 0 {
			return i
		}
	}
	return -1
}

// firstDiff returns the first index where a and b (of equal length)
// differ, or -1.
func firstDiff(a, b []byte) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// FuzzRealloc runs the model with fuzzed seeds.
func FuzzRealloc(f *testing.F) {
	f.Add(uint64(1), uint64(2))
	f.Add(uint64(7), uint64(0))
	f.Fuzz(func(t *testing.T, a, b uint64) {
		h := newTestHeap(t, quiet(Config{Reserve: 64 << 20}))
		c := h.NewCache()
		defer c.Close()
		reallocModel(t, h, c, rand.New(rand.NewPCG(a, b)), 200)
	})
}

// TestReallocDebug runs the model in Debug mode (poisoned free slots,
// every small allocation through the slow path) and with every
// allocation guarded, so moves land in guarded objects too.
func TestReallocDebug(t *testing.T) {
	for name, cfg := range map[string]Config{"Debug": {Debug: true}, "Guarded": {GuardSampleRate: 1}, "Profiled": {ProfileRate: 1}} {
		t.Run(name, func(t *testing.T) {
			cfg.Reserve = 128 << 20
			h := newTestHeap(t, quiet(cfg))
			c := h.NewCache()
			defer c.Close()
			reallocModelLoose(t, h, c, 300)
		})
	}
}

// reallocModelLoose is the model without the in-place rule, which guarded
// objects (sized by guardObjSize, not the class) do not follow.
func reallocModelLoose(t *testing.T, h *Heap, c *Cache, steps int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	var p unsafe.Pointer
	var model []byte
	for step := 0; step < steps; step++ {
		n := rng.IntN(3000)
		if rng.IntN(8) == 0 {
			n = 40<<10 + rng.IntN(20<<10)
		}
		q, err := c.Realloc(p, n)
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if len(model) > n {
			model = model[:n]
		} else {
			model = append(model, make([]byte, n-len(model))...)
		}
		got := unsafe.Slice((*byte)(q), n)
		if d := firstDiff(got, model); d >= 0 {
			t.Fatalf("step %d: byte %d differs", step, d)
		}
		usable, err := h.UsableSize(q)
		if err != nil {
			t.Fatal(err)
		}
		if i := nonZero(q, n, usable); i >= 0 {
			t.Fatalf("step %d: byte %d past the size is not zero", step, i)
		}
		for i := 0; i < min(n, 64); i++ {
			got[i], model[i] = byte(step+i), byte(step+i)
		}
		p = q
	}
	if err := h.Free(p); err != nil {
		t.Fatal(err)
	}
	verifyOK(t, h)
}

// TestReallocCloseConcurrent resizes, measures, views and grows objects
// from several goroutines while the heap is closed under them: every call
// returns nil or ErrClosed, none faults (the copy and the clear happen in a
// section Close waits for), and after Close returned only ErrClosed. The
// workers never touch heap memory themselves.
func TestReallocCloseConcurrent(t *testing.T) {
	rounds := 6
	if testing.Short() {
		rounds = 2
	}
	for round := range rounds {
		h, err := NewHeap(Config{Reserve: 64 << 20})
		if err != nil {
			t.Fatal(err)
		}
		var chk closeRaceCheck
		var closedDone atomic.Bool
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(round), uint64(w)))
				c := h.NewCache()
				var p unsafe.Pointer
				var s []uint64
				e := h.NewEpoch()
				var err error
				for i := 0; i < 200000; i++ {
					after := closedDone.Load()
					n := rng.IntN(3000)
					if rng.IntN(16) == 0 {
						n = 40<<10 + rng.IntN(40<<10)
					}
					var q unsafe.Pointer
					if i%2 == 0 {
						q, err = h.Realloc(p, n)
					} else {
						q, err = c.Realloc(p, n)
					}
					chk.note("Realloc", err, after)
					if err == nil {
						p = q
					}
					_, err = h.UsableSize(p)
					chk.note("UsableSize", err, after)
					_, err = Bytes(h, HandleOf(p), 8)
					chk.note("Bytes", err, after)
					var g []uint64
					g, err = Grow(h, s[:cap(s)], 1+rng.IntN(64))
					chk.note("Grow", err, after)
					if err == nil {
						s = g
					}
					if cap(s) > 4096 {
						chk.note("FreeSlice", FreeSlice(h, s), after)
						s = nil
					}
					if r, err := h.Alloc(16); err == nil {
						chk.note("Retire", e.Retire(r), after)
					}
					if after && i > 100 {
						return
					}
				}
			}()
		}
		time.Sleep(time.Duration(500+rand.IntN(2500)) * time.Microsecond)
		if err := h.Close(); err != nil {
			t.Fatal(err)
		}
		closedDone.Store(true)
		wg.Wait()
		if len(chk.bad) > 0 {
			t.Fatalf("round %d: %d calls, bad results:\n%s", round, chk.calls.Load(), strings.Join(chk.bad, "\n"))
		}
	}
}
