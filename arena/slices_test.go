package arena

import (
	"errors"
	"slices"
	"testing"
	"unsafe"
)

// TestAppendGrowth appends one element at a time through a Heap and a
// Cache and checks the slice against Go's append: the same elements
// always, the memory moving only when the slot is full (so every returned
// capacity is the slot's UsableSize/sizeof(T)), and every old object
// freed on a move.
func TestAppendGrowth(t *testing.T) {
	h := newTestHeap(t, quiet(Config{Reserve: 128 << 20}))
	c := h.NewCache()
	defer c.Close()
	type rec struct{ A, B, C uint64 } // 24 bytes: not a divisor of most classes
	for _, a := range []Allocator{h, c} {
		var s []rec
		var want []rec
		moves := 0
		for i := range 20000 {
			old := unsafe.SliceData(s)
			oldCap := cap(s)
			var err error
			s, err = Append(a, s, rec{uint64(i), uint64(i) * 3, ^uint64(i)})
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, rec{uint64(i), uint64(i) * 3, ^uint64(i)})
			if unsafe.SliceData(s) != old {
				moves++
				if len(s)-1 < oldCap {
					t.Fatalf("moved at len %d with cap %d", len(s)-1, oldCap)
				}
				if old != nil {
					if err := h.Free(unsafe.Pointer(old)); !errors.Is(err, ErrDoubleFree) && !errors.Is(err, ErrInvalidPointer) {
						t.Fatalf("old store not freed after a move: Free says %v", err)
					}
				}
			}
			usable, err := h.UsableSize(unsafe.Pointer(unsafe.SliceData(s)))
			if err != nil {
				t.Fatal(err)
			}
			if cap(s) != usable/int(unsafe.Sizeof(rec{})) {
				t.Fatalf("len %d: cap %d, but the slot holds %d", len(s), cap(s), usable/int(unsafe.Sizeof(rec{})))
			}
		}
		if !slices.Equal(s, want) {
			t.Fatal("contents differ from Go's append")
		}
		if moves > 40 {
			t.Fatalf("%d moves for 20000 appends: growth is not geometric", moves)
		}
		// FreeSlice accepts the real capacity Append handed out.
		if err := FreeSlice(a.(Freer), s); err != nil {
			t.Fatalf("FreeSlice of an appended slice: %v", err)
		}
	}
	if st := h.Stats(); st.HeapObjects != 0 {
		t.Fatalf("%d objects left", st.HeapObjects)
	}
	verifyOK(t, h)
}

// TestGrowInPlace checks that Grow uses the slot's slack before moving:
// MakeSlice's capacity is what was asked, the slot's may be more.
func TestGrowInPlace(t *testing.T) {
	h := newTestHeap(t, quiet(Config{Reserve: 64 << 20}))
	s, err := MakeSlice[uint64](h, 3, 13) // 104 bytes: the 112-byte class
	if err != nil {
		t.Fatal(err)
	}
	s[0], s[1], s[2] = 1, 2, 3
	g, err := Grow(h, s, 11)
	if err != nil {
		t.Fatal(err)
	}
	if unsafe.SliceData(g) != unsafe.SliceData(s) || len(g) != 3 || cap(g) != 14 {
		t.Fatalf("Grow within the slot: moved %v, len %d cap %d; want in place, 3, 14",
			unsafe.SliceData(g) != unsafe.SliceData(s), len(g), cap(g))
	}
	g2, err := Grow(h, g, 12)
	if err != nil {
		t.Fatal(err)
	}
	if unsafe.SliceData(g2) == unsafe.SliceData(g) || !slices.Equal(g2, []uint64{1, 2, 3}) || cap(g2) < 15 {
		t.Fatalf("Grow past the slot: in place %v, %v cap %d", unsafe.SliceData(g2) == unsafe.SliceData(g), g2, cap(g2))
	}
	for _, v := range g2[3:cap(g2)] {
		if v != 0 {
			t.Fatal("grown capacity not zero")
		}
	}
	// Append of part of itself across a move: elems read before the old
	// store is freed.
	g2 = g2[:cap(g2)]
	for i := range g2 {
		g2[i] = uint64(i + 1)
	}
	want := append(slices.Clone(g2), g2...)
	g3, err := Append(h, g2, g2...)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(g3, want) {
		t.Fatalf("self-append: got %v, want %v", g3, want)
	}
	if err := FreeSlice(h, g3); err != nil {
		t.Fatal(err)
	}
	if g, err := Grow(h, []uint64(nil), 0); err != nil || g != nil {
		t.Fatalf("Grow(nil, 0) = %v, %v", g, err)
	}
	if st := h.Stats(); st.HeapObjects != 0 {
		t.Fatalf("%d objects left", st.HeapObjects)
	}
	verifyOK(t, h)
}

// TestAppendRegion checks that through a Region a slice grows by copying
// and the old memory is left to the region.
func TestAppendRegion(t *testing.T) {
	h := newTestHeap(t, quiet(Config{Reserve: 64 << 20}))
	r := h.NewRegion()
	var s []uint32
	for i := range 5000 {
		var err error
		if s, err = Append(r, s, uint32(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i, v := range s {
		if v != uint32(i) {
			t.Fatalf("element %d = %d", i, v)
		}
	}
	if st := h.Stats(); st.HeapObjects != 0 || st.RegionInuse == 0 {
		t.Fatalf("region appends: %d heap objects, %d region bytes", st.HeapObjects, st.RegionInuse)
	}
	if err := r.Free(); err != nil {
		t.Fatal(err)
	}
	// Zero-size elements take no memory anywhere.
	z, err := Append(h, []struct{}(nil), struct{}{}, struct{}{})
	if err != nil || len(z) != 2 {
		t.Fatalf("zero-size Append: %d, %v", len(z), err)
	}
	verifyOK(t, h)
}
