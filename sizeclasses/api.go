package sizeclasses

// api.go holds the lookups spans/ and arena/ use; the tables they read are
// generated into table.go by go generate.

// PageShift, PageSize, MaxSmallSize and NumClasses are defined in the
// generated file, table.go, from the generator's rules
// (internal/classgen/rules.go), so each is stated once.

// SizeToClass returns the smallest class whose size is >= size, for
// 0 < size <= MaxSmallSize. O(1) (table lookups).
//
// Outside that range: size 0 gives class 1, and sizes above MaxSmallSize
// give 0, the large-object class.
func SizeToClass(size uintptr) uint8 {
	if size <= smallSizeMax {
		return sizeToClass8[(size+smallSizeDiv-1)/smallSizeDiv]
	}
	if size <= MaxSmallSize {
		return sizeToClass128[(size-smallSizeMax+largeSizeDiv-1)/largeSizeDiv]
	}
	return 0
}

// Size, Pages and Objects describe class c (1 <= c < NumClasses).
// For class 0 they return 0.
func Size(c uint8) uintptr    { return uintptr(classSize[c]) }    // object size in bytes
func Pages(c uint8) uintptr   { return uintptr(classPages[c]) }   // heap pages per span
func Objects(c uint8) uintptr { return uintptr(classObjects[c]) } // objects per span (<= 1024)

// ObjIndex returns offset / Size(c) by multiply and shift, exact for every
// offset within a span of class c.
func ObjIndex(c uint8, offset uintptr) uintptr {
	return uintptr(uint64(uint32(offset)) * uint64(classMagic[c]) >> 32)
}

// Align returns the alignment of every object of class c in a page-aligned
// span: the largest power of two dividing Size(c), at most PageSize. It is
// at least 8, and at least 16 when Size(c) >= 16. For class 0 it returns
// PageSize (a large object starts its own span).
func Align(c uint8) uintptr {
	s := Size(c)
	if s == 0 || s&(PageSize-1) == 0 {
		return PageSize
	}
	return s & -s
}
