package arena

import (
	"errors"
	"testing"
	"unsafe"

	"github.com/offheap/offheap/sizeclasses"
	"github.com/offheap/offheap/spans"
)

// TestOwnedSpansStayLocal checks that a Cache keeps the spans it filled:
// in a class of 8 objects per span, it fills several spans, frees every
// object (all local frees: no freed bit set, no span left to the central
// lists), and allocates them all again from the same spans, without a new
// span. Then the bound: filling more spans than ownedLimit lets the extra
// ones go to the central lists, and Close hands every span back.
func TestOwnedSpansStayLocal(t *testing.T) {
	h := newTestHeap(t, quiet(Config{Reserve: 64 << 20}))
	c := h.NewCache()
	const size = 1024
	cl := sizeclasses.SizeToClass(size)
	per := int(sizeclasses.Objects(cl))
	limit := int(ownedLimit(cl))
	if limit < 4 {
		t.Fatalf("ownedLimit(%d) = %d: the test needs at least 4", cl, limit)
	}
	nspans := limit / 2
	ptrs := make([]unsafe.Pointer, nspans*per)
	for i := range ptrs {
		p, err := c.Alloc(size)
		if err != nil {
			t.Fatal(err)
		}
		ptrs[i] = p
	}
	if n := len(c.heldSpans()); n != nspans {
		t.Fatalf("cache owns %d spans after filling %d", n, nspans)
	}
	spansBefore := h.Stats().Classes[cl].Spans
	// Free in an order that visits every span many times.
	for k := range per {
		for s := range nspans {
			if err := c.Free(ptrs[s*per+k]); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, s := range c.heldSpans() {
		if s.Owner() != c.id || s.Pending() != 0 {
			t.Fatalf("%s: owner %d, %d remote frees after local frees", s.Describe(), s.Owner(), s.Pending())
		}
	}
	verifyOK(t, h)
	// Double frees into owned spans that are not current are still caught.
	if err := c.Free(ptrs[0]); !errors.Is(err, ErrDoubleFree) {
		t.Fatalf("second free of %p: %v, want ErrDoubleFree", ptrs[0], err)
	}
	again := map[unsafe.Pointer]bool{}
	for range ptrs {
		p, err := c.Alloc(size)
		if err != nil {
			t.Fatal(err)
		}
		again[p] = true
	}
	for _, p := range ptrs {
		if !again[p] {
			t.Fatalf("%p not reused: the cache did not go back to its own spans", p)
		}
	}
	if got := h.Stats().Classes[cl].Spans; got != spansBefore {
		t.Fatalf("class spans %d, want %d: a span was fetched although owned ones had free slots", got, spansBefore)
	}
	// Past the bound: the cache never owns more than ownedLimit spans.
	var more []unsafe.Pointer
	for range (limit + 3) * per {
		p, err := c.Alloc(size)
		if err != nil {
			t.Fatal(err)
		}
		more = append(more, p)
		if n := len(c.heldSpans()); n > limit {
			t.Fatalf("cache owns %d spans, limit %d", n, limit)
		}
	}
	central := 0
	for _, p := range more {
		if h.spans.Lookup(uintptr(p)).Owner() == spans.OwnerCentral {
			central++
		}
	}
	if central == 0 {
		t.Fatalf("no span went back to the central lists past the bound")
	}
	verifyOK(t, h)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(c.heldSpans()); n != 0 {
		t.Fatalf("closed cache still owns %d spans", n)
	}
	verifyOK(t, h)
	for p := range again {
		if err := h.Free(p); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range more {
		if err := h.Free(p); err != nil {
			t.Fatal(err)
		}
	}
	publishBatches(t, h)
	verifyOK(t, h)
	if st := h.Stats(); st.HeapObjects != 0 || st.Classes[cl].Spans != 0 {
		t.Fatalf("after freeing everything: %d objects, %d spans of class %d", st.HeapObjects, st.Classes[cl].Spans, cl)
	}
}

// TestOwnedSpansRemoteFrees checks that frees from another cache into
// spans a cache owns but is not allocating from are collected when it
// runs dry: the spans are reused, not replaced.
func TestOwnedSpansRemoteFrees(t *testing.T) {
	h := newTestHeap(t, quiet(Config{Reserve: 64 << 20}))
	c, other := h.NewCache(), h.NewCache()
	defer c.Close()
	defer other.Close()
	const size = 1024
	cl := sizeclasses.SizeToClass(size)
	per := int(sizeclasses.Objects(cl))
	ptrs := make([]unsafe.Pointer, 3*per)
	for i := range ptrs {
		p, err := c.Alloc(size)
		if err != nil {
			t.Fatal(err)
		}
		ptrs[i] = p
	}
	for _, p := range ptrs {
		if err := other.Free(p); err != nil {
			t.Fatal(err)
		}
	}
	// The last of them wait in other's batch (remotefree.go) until it
	// publishes it, as its next slow path would.
	publishCache(t, other)
	spansBefore := h.Stats().Classes[cl].Spans
	seen := map[unsafe.Pointer]bool{}
	for _, p := range ptrs {
		seen[p] = true
	}
	for range ptrs {
		p, err := c.Alloc(size)
		if err != nil {
			t.Fatal(err)
		}
		if !seen[p] {
			t.Fatalf("Alloc = %p, not a remotely freed slot of an owned span", p)
		}
	}
	if got := h.Stats().Classes[cl].Spans; got != spansBefore {
		t.Fatalf("class spans %d, want %d", got, spansBefore)
	}
	verifyOK(t, h)
}

// TestCentralPrefersFullest checks that a cache taking a span from the
// central lists takes the fullest one: after a cache lets go spans left 1,
// 4, 7 and 2 of 8 objects full, new allocations fill the 7/8 span first,
// then the 4/8 one, then the 2/8 one, and the 1/8 one last (issue 14).
func TestCentralPrefersFullest(t *testing.T) {
	h := newTestHeap(t, quiet(Config{Reserve: 64 << 20}))
	const size = 1024
	cl := sizeclasses.SizeToClass(size)
	per := int(sizeclasses.Objects(cl))
	if per != 8 {
		t.Skipf("class of %d bytes holds %d objects per span, the test expects 8", size, per)
	}
	a := h.NewCache()
	live := []int{1, 4, 7, 2}
	var base []*spans.Span
	groups := make([][]unsafe.Pointer, len(live))
	for g := range groups {
		groups[g] = make([]unsafe.Pointer, per)
		for i := range groups[g] {
			p, err := a.Alloc(size)
			if err != nil {
				t.Fatal(err)
			}
			groups[g][i] = p
		}
		s := h.spans.Lookup(uintptr(groups[g][0]))
		if h.spans.Lookup(uintptr(groups[g][per-1])) != s {
			t.Fatal("a span's worth of allocations spread over two spans")
		}
		base = append(base, s)
	}
	for g, keep := range live {
		for _, p := range groups[g][keep:] {
			if err := a.Free(p); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	verifyOK(t, h)
	b := h.NewCache()
	defer b.Close()
	for _, want := range []int{2, 1, 1, 1, 1, 3, 3, 3, 3, 3, 3, 0} {
		p, err := b.Alloc(size)
		if err != nil {
			t.Fatal(err)
		}
		if got := h.spans.Lookup(uintptr(p)); got != base[want] {
			t.Fatalf("Alloc landed in %s, want the fullest, %s", got.Describe(), base[want].Describe())
		}
	}
	verifyOK(t, h)
}
