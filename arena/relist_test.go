package arena

import (
	"testing"
	"unsafe"

	"github.com/offheap/offheap/sizeclasses"
	"github.com/offheap/offheap/spans"
)

// TestStaleRelist: a remote freer that counted the free bringing a full
// central span's pending frees to relistAt, but reached the class lock
// only after the span had been cached, refilled and listed full again,
// must not move it to the partial list on its stale count (the full list
// holds spans with fewer than relistAt frees pending; Verify checks it).
func TestStaleRelist(t *testing.T) {
	h := newTestHeap(t, quiet(Config{}))
	const size = 256
	cl := sizeclasses.SizeToClass(size)
	nelems := sizeclasses.Objects(cl)
	c := h.NewCache()
	var ps []unsafe.Pointer
	for range nelems {
		p, err := c.Alloc(size)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	if err := c.Close(); err != nil { // hands the full span back: full list
		t.Fatal(err)
	}
	verifyOK(t, h)
	s := h.spans.Lookup(uintptr(ps[0]))
	if s.List != spans.ListFull || s.Owner() != spans.OwnerCentral {
		t.Fatalf("after Close: %s on list %d, want full and central", s.Describe(), s.List)
	}
	// One remote free: pending 1, under relistAt. It goes through a
	// Cache of its own, closed to publish its batch (remotefree.go).
	c2 := h.NewCache()
	if err := c2.Free(ps[1]); err != nil {
		t.Fatal(err)
	}
	if err := c2.Close(); err != nil {
		t.Fatal(err)
	}
	if s.Pending() != 1 || relistAt(s) <= 1 {
		t.Fatalf("pending %d, relistAt %d", s.Pending(), relistAt(s))
	}
	// The stale freer arrives with the count it saw earlier.
	h.remoteCentral(s, uint8(cl), s.Gen(), relistAt(s)-1, relistAt(s))
	if s.List != spans.ListFull {
		t.Errorf("a stale relistAt count moved %s with %d frees pending to list %d", s.Describe(), s.Pending(), s.List)
	}
	verifyOK(t, h)
	for i, p := range ps {
		if i != 1 {
			if err := h.Free(p); err != nil {
				t.Fatal(err)
			}
		}
	}
	verifyOK(t, h)
}
