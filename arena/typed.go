package arena

import (
	"fmt"
	"unsafe"

	"golang.org/x/exp/constraints"
)

// Allocator is anything that hands out zeroed memory: *Heap, *Cache and
// *Region.
type Allocator interface {
	Alloc(size int) (unsafe.Pointer, error)
}

// Freer is anything that frees single objects: *Heap and *Cache. Region
// memory is freed all at once by Region.Free.
type Freer interface {
	Free(p unsafe.Pointer) error
}

// New allocates a zeroed T from a. T must not contain Go pointers
// (pointers, strings, slices, maps, channels, funcs, interfaces,
// unsafe.Pointer, at any depth): the GC does not scan offheap memory, so
// their targets could be freed under you. Such a T gets ErrPointerType.
// The check is made once per type and remembered.
func New[T any](a Allocator) (*T, error) {
	f := factsOf[T]()
	if f.err != nil {
		return nil, f.err
	}
	p, err := a.Alloc(int(f.size))
	if err != nil {
		return nil, err
	}
	return (*T)(p), nil
}

// MakeSlice allocates a zeroed []T of the given length and capacity from a,
// with the same rule on T as New. Negative lengths, len > cap, and sizes
// that overflow return ErrInvalidSize. A slice of zero capacity (or of a
// zero-size T) needs no memory: it is made without allocating, and
// FreeSlice of it does nothing.
func MakeSlice[T any](a Allocator, len, cap int) ([]T, error) {
	f := factsOf[T]()
	if f.err != nil {
		return nil, f.err
	}
	if len < 0 || cap < len {
		return nil, fmt.Errorf("%w: MakeSlice len %d cap %d", ErrInvalidSize, len, cap)
	}
	if cap == 0 || f.size == 0 {
		return make([]T, len, cap), nil // no memory to allocate, nothing to free
	}
	size, ok := mulNoOverflow(uint64(cap), uint64(f.size))
	if !ok || size > uint64(maxAllocSize) {
		return nil, fmt.Errorf("%w: MakeSlice of %d elements of %d bytes", ErrInvalidSize, cap, f.size)
	}
	p, err := a.Alloc(int(size))
	if err != nil {
		return nil, err
	}
	return unsafe.Slice((*T)(p), cap)[:len], nil
}

// maxAllocSize bounds one allocation: the largest int.
const maxAllocSize = int(^uint(0) >> 1)

// mulNoOverflow returns a*b and whether it did not overflow.
func mulNoOverflow[T constraints.Unsigned](a, b T) (T, bool) {
	if a == 0 || b == 0 {
		return 0, true
	}
	p := a * b
	return p, p/b == a
}

// Free frees an object allocated by New through a *Heap or *Cache.
func Free[T any](f Freer, p *T) error {
	if p == nil {
		return fmt.Errorf("%w: nil", ErrInvalidPointer)
	}
	return f.Free(unsafe.Pointer(p))
}

// FreeSlice frees a slice allocated by MakeSlice or CloneBytes (s may have
// been resliced as long as it still starts at the first element).
func FreeSlice[T any](f Freer, s []T) error {
	if s == nil {
		return fmt.Errorf("%w: nil slice", ErrInvalidPointer)
	}
	if cap(s) == 0 || unsafe.Sizeof(*new(T)) == 0 {
		return nil // made without memory
	}
	return f.Free(unsafe.Pointer(unsafe.SliceData(s)))
}

// CloneBytes copies b into memory from a and returns the copy, which views
// offheap memory: it is valid until that memory is freed (FreeSlice through
// a Heap or Cache, or the Region's Free) and must not be used after.
//
// An empty b allocates nothing: the result is an empty slice that needs no
// free.
func CloneBytes(a Allocator, b []byte) ([]byte, error) {
	if len(b) == 0 {
		return []byte{}, nil
	}
	// The copy writes heap memory after Alloc returns: hold a slow section
	// (closing.go) across both, so a concurrent Heap.Close cannot unmap
	// the memory in between.
	if h := heapOf(a); h != nil {
		if !h.enter() {
			return nil, ErrClosed
		}
		defer h.leave()
	}
	p, err := a.Alloc(len(b))
	if err != nil {
		return nil, err
	}
	out := unsafe.Slice((*byte)(p), len(b))
	copy(out, b)
	return out, nil
}

// heapOf returns the Heap behind an Allocator of this package, or nil.
func heapOf(a Allocator) *Heap {
	switch v := a.(type) {
	case *Heap:
		return v
	case *Cache:
		if v != nil {
			return v.h
		}
	case *Region:
		if v != nil {
			return v.h
		}
	}
	return nil
}

// CloneString copies s into memory from a and returns a string viewing
// it. The string is valid until that memory is freed (free it with
// FreeString, or with its Region) and must not be used after: Go assumes
// strings never change, and freed memory is cleared and reused. An empty s
// allocates nothing.
func CloneString(a Allocator, s string) (string, error) {
	if s == "" {
		return "", nil
	}
	b, err := CloneBytes(a, unsafe.Slice(unsafe.StringData(s), len(s)))
	if err != nil {
		return "", err
	}
	return unsafe.String(unsafe.SliceData(b), len(b)), nil
}

// FreeString frees a string made by CloneString through a Heap or Cache.
// Freeing "" does nothing: CloneString allocates nothing for it.
func FreeString(f Freer, s string) error {
	if s == "" {
		return nil
	}
	return f.Free(unsafe.Pointer(unsafe.StringData(s)))
}
