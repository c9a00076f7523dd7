package arena

import (
	"errors"
	"fmt"
	"testing"
	"unsafe"

	"github.com/offheap/offheap/sizeclasses"
	"github.com/offheap/offheap/spans"
)

// centralSpan fills one span of size-byte objects through a Cache and
// closes it, so that the span is full and central, and returns the span
// and its objects in slot order.
func centralSpan(t *testing.T, h *Heap, size int) (*spans.Span, []unsafe.Pointer) {
	t.Helper()
	c := h.NewCache()
	cl := sizeclasses.SizeToClass(uintptr(size))
	var ps []unsafe.Pointer
	for range sizeclasses.Objects(cl) {
		p, err := c.Alloc(size)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	s := h.spans.Lookup(uintptr(ps[0]))
	if s.Owner() != spans.OwnerCentral || s.List != spans.ListFull || h.spans.Lookup(uintptr(ps[len(ps)-1])) != s {
		t.Fatalf("setup: %s on list %d, want one full central span", s.Describe(), s.List)
	}
	return s, ps
}

func slotOf(s *spans.Span, p unsafe.Pointer) uintptr {
	return (uintptr(p) - s.Base) / uintptr(s.ElemSize)
}

// TestRemoteBatchRefusesDoubleFree checks that a free waiting in a cache's
// batch, its freed bit not yet set, is already a free to everyone else:
// freeing the object again through the same cache, another cache or the
// Heap returns ErrDoubleFree and changes nothing, lookups refuse it, and
// the batch publishes the one free.
func TestRemoteBatchRefusesDoubleFree(t *testing.T) {
	h := newTestHeap(t, quiet(Config{}))
	s, ps := centralSpan(t, h, 64)
	b := h.NewCache()
	other := h.NewCache()
	defer other.Close()
	// The first free into a word goes out at once (direct); the next
	// one into it is batched.
	p := ps[3]
	for _, q := range []unsafe.Pointer{ps[2], p} {
		if err := b.Free(q); err != nil {
			t.Fatal(err)
		}
	}
	if got := *s.Slot(slotOf(s, p)); got != spans.SlotRemote || s.Pending() != 1 || s.FreedBit(slotOf(s, p)) {
		t.Fatalf("after a batched free: slot state %d, pending %d, freed bit %v; want %d, 1, false",
			got, s.Pending(), s.FreedBit(slotOf(s, p)), spans.SlotRemote)
	}
	for name, free := range map[string]func(unsafe.Pointer) error{
		"the same cache": b.Free, "another cache": other.Free, "the heap": h.Free,
	} {
		if err := free(p); !errors.Is(err, ErrDoubleFree) {
			t.Errorf("second free through %s: %v, want ErrDoubleFree", name, err)
		}
	}
	if _, err := h.UsableSize(p); err == nil {
		t.Error("UsableSize of a batched free succeeded")
	}
	verifyOK(t, h)
	if st := h.Stats(); st.HeapObjects != uint64(len(ps)-2) || st.Frees != 2 {
		t.Errorf("after two frees and three refused: HeapObjects %d, Frees %d; want %d, 2", st.HeapObjects, st.Frees, len(ps)-2)
	}
	if err := b.Close(); err != nil { // publishes the batch
		t.Fatal(err)
	}
	if s.Pending() != 2 || !s.FreedBit(slotOf(s, p)) {
		t.Fatalf("after Close: pending %d, freed bit %v; want 2, true", s.Pending(), s.FreedBit(slotOf(s, p)))
	}
	verifyOK(t, h)
	// All but one more, so that the span stays.
	for _, q := range ps[1:] {
		if q != p && q != ps[2] {
			if err := other.Free(q); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := h.Free(p); !errors.Is(err, ErrDoubleFree) {
		t.Errorf("free after publication: %v, want ErrDoubleFree", err)
	}
	if err := other.Free(ps[0]); err != nil {
		t.Fatal(err)
	}
	if st := h.Stats(); st.Classes[s.Class].Spans != 0 || st.HeapObjects != 0 {
		t.Errorf("after freeing the rest: %s", statsLine(st))
	}
	verifyOK(t, h)
}

// TestRemoteBatchPublishesWhenDue checks the moments a batch goes out on
// its own: a free into another word publishes the batch it replaces (and
// the span moves to the partial lists once its published frees reach
// relistAt), and the free of a central span's last object publishes at
// once and frees the span, with no Close or allocation needed.
func TestRemoteBatchPublishesWhenDue(t *testing.T) {
	h := newTestHeap(t, quiet(Config{}))
	const size = 16 // 512 objects: 8 words of 64 slots, relistAt 64
	s, ps := centralSpan(t, h, size)
	at := int(relistAt(s))
	if at < 3 || len(ps) < 3*64 {
		t.Fatalf("relistAt %d of %d objects: the test needs a batch below it and three words", at, len(ps))
	}
	b := h.NewCache()
	defer b.Close()
	// Below relistAt in word 1: nothing published.
	for _, p := range ps[64 : 64+at-2] {
		if err := b.Free(p); err != nil {
			t.Fatal(err)
		}
	}
	// The first free into the word went out at once, the others wait.
	if s.Pending() != 1 || s.List != spans.ListFull {
		t.Fatalf("%d frees under relistAt %d: pending %d, list %d; want 1, full", at-2, at, s.Pending(), s.List)
	}
	verifyOK(t, h)
	// A free in word 0 publishes word 1's batch, and itself: still
	// under relistAt. The next two are batched.
	for _, p := range ps[:3] {
		if err := b.Free(p); err != nil {
			t.Fatal(err)
		}
	}
	if s.Pending() != int32(at-1) || s.List != spans.ListFull {
		t.Fatalf("after frees into another word: pending %d, list %d; want %d, full", s.Pending(), s.List, at-1)
	}
	verifyOK(t, h)
	// A free in word 2 publishes word 0's two: past relistAt.
	if err := b.Free(ps[128]); err != nil {
		t.Fatal(err)
	}
	if s.Pending() != int32(at+2) || s.List != spans.ListPartial {
		t.Fatalf("after publishing past relistAt: pending %d, list %d; want %d, partial", s.Pending(), s.List, at+2)
	}
	verifyOK(t, h)
	// Every other object, in reverse: the last free publishes and frees
	// the span.
	cl := s.Class
	for i := len(ps) - 1; i >= 0; i-- {
		if i >= 3 && i != 128 && (i < 64 || i >= 64+at-2) {
			if err := b.Free(ps[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	st := h.Stats()
	if st.Classes[cl].Spans != 0 || st.HeapObjects != 0 {
		t.Fatalf("after the last free: %d spans of class %d, %d objects; want none", st.Classes[cl].Spans, cl, st.HeapObjects)
	}
	verifyOK(t, h)
}

// TestRemoteBatchPublishedBySlowPath checks that a cache's allocation
// slow path publishes its batch first, so the slots come back.
func TestRemoteBatchPublishedBySlowPath(t *testing.T) {
	h := newTestHeap(t, quiet(Config{}))
	s, ps := centralSpan(t, h, 1024) // 8 objects, relistAt 4
	b := h.NewCache()
	defer b.Close()
	for _, p := range ps[:2] { // the first goes out at once, the second waits
		if err := b.Free(p); err != nil {
			t.Fatal(err)
		}
	}
	if s.Pending() != 1 || s.FreedBit(1) {
		t.Fatalf("pending %d, freed bit %v after a direct and a batched free; want 1, false", s.Pending(), s.FreedBit(1))
	}
	if _, err := b.Alloc(64); err != nil { // another class: a refill
		t.Fatal(err)
	}
	if s.Pending() != 2 || !s.FreedBit(1) {
		t.Fatalf("after the slow path: pending %d, freed bit %v; want 2, true", s.Pending(), s.FreedBit(1))
	}
	verifyOK(t, h)
}

// TestRemoteBatchRacingDoubleFree plays the one double free a batch cannot
// refuse at once: another free that read the slot as allocated before the
// batch's byte store, and set the freed bit itself. Publishing finds the
// bit set, counts the free once, takes the extra one back off Frees and
// panics with a report naming the object; the heap stays consistent and
// usable.
func TestRemoteBatchRacingDoubleFree(t *testing.T) {
	h := newTestHeap(t, quiet(Config{}))
	s, ps := centralSpan(t, h, 64)
	b := h.NewCache()
	p := ps[5]
	for _, q := range []unsafe.Pointer{ps[4], p} { // p is batched
		if err := b.Free(q); err != nil {
			t.Fatal(err)
		}
	}
	i := slotOf(s, p)
	// The racing free: what Heap.free's unbatched remote path does.
	if !s.MarkFreed(i) {
		t.Fatal("freed bit already set")
	}
	s.NotePending()
	bump(&h.sharedCnt.frees[s.Class])
	msg := catchPanic(func() { _ = b.Close() })
	wantMessage(t, msg, "racing double free", fmt.Sprintf("%#x", uintptr(p)), "freed bit already set", fmt.Sprintf("span %d ", s.ID()))
	if s.Pending() != 2 {
		t.Errorf("pending %d after the raced publish, want 2", s.Pending())
	}
	if st := h.Stats(); st.Frees != 2 || st.HeapObjects != uint64(len(ps)-2) {
		t.Errorf("Frees %d, HeapObjects %d; want 2, %d", st.Frees, st.HeapObjects, len(ps)-2)
	}
	verifyOK(t, h)
	for _, q := range ps {
		if q != p && q != ps[4] {
			if err := h.Free(q); err != nil {
				t.Fatal(err)
			}
		}
	}
	publishBatches(t, h)
	if st := h.Stats(); st.Classes[s.Class].Spans != 0 || st.HeapObjects != 0 {
		t.Errorf("after freeing the rest: %s", statsLine(st))
	}
	verifyOK(t, h)
}
