package arena

import (
	"errors"
	"runtime"
	"strings"
	"testing"
	"unsafe"
)

// node is an offheap record that refers to others by Ref.
type node struct {
	Val  uint64
	Next Ref[node]
}

// TestRefList builds a linked list entirely in offheap memory, linked by
// Refs, forces a GC, and walks it: the links survive because they are
// addresses the GC has no business with, and each record is where its
// Ref says.
func TestRefList(t *testing.T) {
	h := newTestHeap(t, quiet(Config{Reserve: 64 << 20}))
	c := h.NewCache()
	defer c.Close()
	var head Ref[node]
	const n = 1000
	for i := range n {
		r, err := NewRef[node](c)
		if err != nil {
			t.Fatal(err)
		}
		nd := r.Get(h)
		if nd.Val != 0 || nd.Next != 0 {
			t.Fatalf("NewRef gave a non-zero record")
		}
		nd.Val, nd.Next = uint64(i), head
		head = r
	}
	runtime.GC()
	i := n - 1
	for r := head; r != 0; i-- {
		nd := r.Get(h)
		if nd.Val != uint64(i) {
			t.Fatalf("record %d holds %d", i, nd.Val)
		}
		if RefOf(nd) != r || r.Handle() != HandleOf(unsafe.Pointer(nd)) {
			t.Fatalf("RefOf/Handle do not round-trip: %#x, %#x", RefOf(nd), r.Handle())
		}
		next := nd.Next
		if err := Free(c, nd); err != nil {
			t.Fatal(err)
		}
		r = next
	}
	if i != -1 {
		t.Fatalf("walked %d records, want %d", n-1-i, n)
	}
	if RefOf[node](nil) != 0 || Ref[node](0).Get(h) != nil || Handle(0).Pointer(h) != nil {
		t.Fatal("nil does not map to the zero Ref and back")
	}
	if st := h.Stats(); st.HeapObjects != 0 {
		t.Fatalf("%d objects left", st.HeapObjects)
	}
}

// TestHandlePointerBounds checks that a Handle outside the heap panics
// with its address instead of becoming a pointer.
func TestHandlePointerBounds(t *testing.T) {
	h := newTestHeap(t, quiet(Config{Reserve: 64 << 20}))
	other := newTestHeap(t, quiet(Config{Reserve: 64 << 20}))
	x, err := AllocHandle(other, 64)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Handle{x, Handle(h.base - 1), Handle(h.limit), ^Handle(0)} {
		func() {
			defer func() {
				r := recover()
				if s, ok := r.(string); !ok || !strings.Contains(s, "outside the heap") {
					t.Errorf("Pointer(%#x) recovered %v, want a panic naming the handle", uintptr(bad), r)
				}
			}()
			_ = bad.Pointer(h)
		}()
	}
	if p := x.Pointer(other); uintptr(p) != uintptr(x) {
		t.Fatalf("Pointer = %p, want %#x", p, uintptr(x))
	}
	if p := Handle(h.limit - 1).Pointer(h); uintptr(p) != h.limit-1 {
		t.Fatalf("last byte: %p", p)
	}
}

// TestViews checks Bytes and View over objects of every kind: writes
// through a view land in the object, the view may span the whole usable
// size and no more, and region memory is viewable up to its span's end.
func TestViews(t *testing.T) {
	h := newTestHeap(t, quiet(Config{Reserve: 64 << 20}))
	for _, size := range []int{1, 100, 4000, 100 << 10} {
		x, err := AllocHandle(h, size)
		if err != nil {
			t.Fatal(err)
		}
		usable, _ := h.UsableSize(x.Pointer(h))
		b, err := Bytes(h, x, usable)
		if err != nil || len(b) != usable || cap(b) != usable {
			t.Fatalf("Bytes(%d of %d) = len %d cap %d, %v", usable, size, len(b), cap(b), err)
		}
		if i := firstByteNot(x.Pointer(h), usable, 0); i >= 0 {
			t.Fatalf("fresh object byte %d not zero", i)
		}
		for i := range b {
			b[i] = byte(i)
		}
		words, err := View[uint32](h, x, usable/4)
		if err != nil {
			t.Fatal(err)
		}
		if usable >= 4 && words[0] != 0x03020100 {
			t.Fatalf("typed view word 0 = %#x", words[0])
		}
		if _, err := View[uint32](h, x, usable/4+1); !errors.Is(err, ErrInvalidSize) {
			t.Fatalf("View past the object: %v", err)
		}
		type rec struct{ A, B uint64 }
		if rs, err := View[rec](h, x, usable/16); err != nil || len(rs) != usable/16 {
			t.Fatalf("View[rec]: %d, %v", len(rs), err)
		}
		if e, err := Bytes(h, x, 0); err != nil || len(e) != 0 {
			t.Fatalf("empty view: %v", err)
		}
		if err := h.Free(x.Pointer(h)); err != nil {
			t.Fatal(err)
		}
		if _, err := Bytes(h, x, 1); !errors.Is(err, ErrDoubleFree) && !errors.Is(err, ErrInvalidPointer) {
			t.Fatalf("view of a freed object: %v", err)
		}
	}
	r := h.NewRegion()
	defer r.Free()
	x, err := AllocHandle(r, 100)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Bytes(h, x, 100)
	if err != nil {
		t.Fatal(err)
	}
	copy(b, "region")
	if string(unsafe.Slice((*byte)(x.Pointer(h)), 6)) != "region" {
		t.Fatal("write through the region view lost")
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Bytes(h, x, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("view after Close: %v", err)
	}
}
