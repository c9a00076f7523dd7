package sizeclasses

import "testing"

// sink keeps benchmark results alive so the work is not optimised away.
var sink uintptr

func BenchmarkSizeToClass(b *testing.B) {
	var acc uintptr
	size := uintptr(1)
	for b.Loop() {
		acc += uintptr(SizeToClass(size))
		size = size*5&(MaxSmallSize-1) + 1 // wander over 1..MaxSmallSize
	}
	sink = acc
}

func BenchmarkObjIndex(b *testing.B) {
	var acc uintptr
	c, off := uint8(1), uintptr(0)
	for b.Loop() {
		acc += ObjIndex(c, off)
		off += 4099
		if off >= Pages(c)*PageSize {
			off -= Pages(c) * PageSize
			if c++; c == NumClasses {
				c = 1
			}
		}
	}
	sink = acc
}

func BenchmarkDivide(b *testing.B) { // for comparison: a real division
	var acc uintptr
	c, off := uint8(1), uintptr(0)
	for b.Loop() {
		acc += off / Size(c)
		off += 4099
		if off >= Pages(c)*PageSize {
			off -= Pages(c) * PageSize
			if c++; c == NumClasses {
				c = 1
			}
		}
	}
	sink = acc
}
