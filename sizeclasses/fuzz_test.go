package sizeclasses

import "testing"

// modelSizeToClass is the plain definition: a linear scan.
func modelSizeToClass(size uintptr) uint8 {
	if size > MaxSmallSize {
		return 0
	}
	for c := uint8(1); c < NumClasses; c++ {
		if Size(c) >= size {
			return c
		}
	}
	panic("unreachable: the last class is MaxSmallSize")
}

func FuzzSizeToClass(f *testing.F) {
	for _, size := range []uint{0, 1, 8, 9, 16, 17, 1024, 1025, 1152, 9472, MaxSmallSize, MaxSmallSize + 1} {
		f.Add(size, uint(size*3))
	}
	f.Fuzz(func(t *testing.T, size, offset uint) {
		c := SizeToClass(uintptr(size))
		if want := modelSizeToClass(uintptr(size)); c != want {
			t.Fatalf("SizeToClass(%d) = %d, model says %d", size, c, want)
		}
		if c == 0 {
			return
		}
		off := uintptr(offset) % (Pages(c) * PageSize)
		if got, want := ObjIndex(c, off), off/Size(c); got != want {
			t.Fatalf("ObjIndex(%d, %d) = %d, want %d", c, off, got, want)
		}
	})
}
