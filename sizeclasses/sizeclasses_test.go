package sizeclasses

import "testing"

func TestClassInvariants(t *testing.T) {
	if NumClasses < 2 || NumClasses > 256 {
		t.Fatalf("NumClasses = %d", NumClasses)
	}
	if Size(0) != 0 || Pages(0) != 0 || Objects(0) != 0 {
		t.Errorf("class 0 = (%d, %d, %d), want zeros", Size(0), Pages(0), Objects(0))
	}
	if got := Size(NumClasses - 1); got != MaxSmallSize {
		t.Errorf("last class size %d, want MaxSmallSize %d", got, MaxSmallSize)
	}
	maxObjects, maxPages := uintptr(0), uintptr(0)
	for c := uint8(1); c < NumClasses; c++ {
		size, pages, objects := Size(c), Pages(c), Objects(c)
		span := pages * PageSize
		if size <= Size(c-1) {
			t.Errorf("class %d: size %d not above previous %d", c, size, Size(c-1))
		}
		if pages == 0 || objects == 0 {
			t.Fatalf("class %d: %d pages, %d objects", c, pages, objects)
		}
		if objects != span/size {
			t.Errorf("class %d: %d objects, want span/size = %d", c, objects, span/size)
		}
		if objects > 1024 {
			t.Errorf("class %d: %d objects per span, more than 1024", c, objects)
		}
		if tail := span % size; tail*8 > span {
			t.Errorf("class %d: tail waste %d of %d bytes, above 12.5%%", c, tail, span)
		}
		want := uintptr(8)
		if size >= 16 {
			want = 16
		}
		if size%want != 0 {
			t.Errorf("class %d: size %d not a multiple of %d", c, size, want)
		}
		align := Align(c)
		if align < want || align&(align-1) != 0 || align > PageSize {
			t.Errorf("class %d: Align = %d", c, align)
		}
		// Every object of a page-aligned span sits on the class alignment.
		for i := uintptr(0); i < objects; i++ {
			if (i*size)%align != 0 {
				t.Errorf("class %d: object %d at offset %d not %d-aligned", c, i, i*size, align)
				break
			}
		}
		if magic := ^uint32(0)/uint32(size) + 1; classMagic[c] != magic {
			t.Errorf("class %d: magic %d, want %d", c, classMagic[c], magic)
		}
		maxObjects, maxPages = max(maxObjects, objects), max(maxPages, pages)
	}
	if maxObjects != maxObjectsPerSpan || maxPages != maxSpanPages {
		t.Errorf("maxObjectsPerSpan, maxSpanPages = %d, %d; classes give %d, %d",
			maxObjectsPerSpan, maxSpanPages, maxObjects, maxPages)
	}
}

// TestSizeToClassExhaustive checks every small size.
func TestSizeToClassExhaustive(t *testing.T) {
	for size := uintptr(1); size <= MaxSmallSize; size++ {
		c := SizeToClass(size)
		if c == 0 || c >= NumClasses {
			t.Fatalf("SizeToClass(%d) = %d", size, c)
		}
		if Size(c) < size || Size(c-1) >= size {
			t.Fatalf("SizeToClass(%d) = %d (size %d, previous %d)", size, c, Size(c), Size(c-1))
		}
	}
	if c := SizeToClass(0); c != 1 {
		t.Errorf("SizeToClass(0) = %d, want 1", c)
	}
	for _, size := range []uintptr{MaxSmallSize + 1, MaxSmallSize + 128, 1 << 20, ^uintptr(0)} {
		if c := SizeToClass(size); c != 0 {
			t.Errorf("SizeToClass(%d) = %d, want 0", size, c)
		}
	}
}

// TestObjIndexExhaustive checks the multiply-shift against division for
// every byte offset of every class's span.
func TestObjIndexExhaustive(t *testing.T) {
	for c := uint8(1); c < NumClasses; c++ {
		size, span := Size(c), Pages(c)*PageSize
		for off := uintptr(0); off < span; off++ {
			if got, want := ObjIndex(c, off), off/size; got != want {
				t.Fatalf("ObjIndex(%d, %d) = %d, want %d (size %d)", c, off, got, want, size)
			}
		}
	}
}
