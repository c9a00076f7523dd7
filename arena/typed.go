package arena

import (
	"fmt"
	"reflect"
	"unsafe"

	"github.com/offheap/offheap/pages"
	"github.com/offheap/offheap/sizeclasses"
	"github.com/offheap/offheap/spans"
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
	var p unsafe.Pointer
	var err error
	if c, ok := a.(*Cache); ok {
		p, err = c.Alloc(int(f.size)) // a direct call, cheaper than through the interface
	} else {
		p, err = a.Alloc(int(f.size))
	}
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
//
// Through a *Heap or *Cache it first checks that the object was allocated
// for a T: an object of another size class (or, if large, of another page
// count) than New[T] allocates is refused with ErrInvalidPointer naming
// both, and stays allocated. The check is by size class, so a type of
// another size in the same class is not told apart. Through any other
// Freer, p is freed unchecked.
func Free[T any](f Freer, p *T) error {
	if p == nil {
		return fmt.Errorf("%w: nil", ErrInvalidPointer)
	}
	size := unsafe.Sizeof(*p)
	wrongType, err := typedFree(f, unsafe.Pointer(p), size)
	if wrongType {
		return fmt.Errorf("%w, not a %v (%d bytes)", err, reflect.TypeFor[T](), size)
	}
	return err
}

// FreeSlice frees a slice allocated by MakeSlice or CloneBytes (s may have
// been resliced as long as it still starts at the first element and keeps
// its capacity). Like Free, it refuses with ErrInvalidPointer a slice
// whose cap(s)*sizeof(T) bytes are not the size class (or page count)
// the memory was allocated with, leaving it allocated.
func FreeSlice[T any](f Freer, s []T) error {
	if s == nil {
		return fmt.Errorf("%w: nil slice", ErrInvalidPointer)
	}
	elem := unsafe.Sizeof(*new(T))
	if cap(s) == 0 || elem == 0 {
		return nil // made without memory
	}
	// cap(s)*elem cannot overflow: the slice exists.
	size := uintptr(cap(s)) * elem
	wrongType, err := typedFree(f, unsafe.Pointer(unsafe.SliceData(s)), size)
	if wrongType {
		return fmt.Errorf("%w, not a []%v of cap %d (%d bytes)", err, reflect.TypeFor[T](), cap(s), size)
	}
	return err
}

// typedFree frees p, which Free or FreeSlice were told holds size bytes,
// through f. Through a *Heap or *Cache it first checks the object's size
// against the span holding it, looking the span up once for both the check
// and the free; wrongType says the check refused it. The object can have
// been allocated with size bytes if it has the same size class (a small
// object), page count (a large one) or rounded size (a guarded one); the
// check reads only span fields fixed while the span is published, and
// leaves spans it cannot judge (none, region memory, a freed guarded
// object) to free, which refuses them with its own error. Other Freers
// free p unchecked.
func typedFree(f Freer, p unsafe.Pointer, size uintptr) (wrongType bool, err error) {
	var h *Heap
	var c *Cache
	switch x := f.(type) {
	case *Heap:
		h = x
	case *Cache:
		if x == nil || x.closed {
			return false, f.Free(p) // a nil Cache panics there as anywhere
		}
		h, c = x.h, x
	default:
		return false, f.Free(p)
	}
	// The span is looked up and checked inside the fast section free
	// runs in (closing.go), so Close cannot unmap the table meanwhile.
	var pid int
	ok := false
	if c != nil {
		ok = c.openCache()
	} else {
		pid, ok = h.openFast()
	}
	if !ok {
		h.endFast(c)
		return false, ErrClosed // as Heap.Free and Cache.Free
	}
	s := h.spans.Lookup(uintptr(p))
	if s != nil && !h.uncheckedFree {
		// The common case, small objects, written out here: a call would
		// cost as much as the check.
		fits := true
		if cl := s.Class; cl != 0 {
			fits = size <= sizeclasses.MaxSmallSize && sizeclasses.SizeToClass(size) == cl
		} else {
			fits = classZeroFits(s, size)
		}
		if !fits {
			// Formatting allocates: not while pinned.
			h.toSlow(c)
			defer h.leave()
			return true, wrongSize(s, uintptr(p))
		}
		// A free into a span the Cache (or, through the Heap, the P's
		// cache) owns: Cache.Free's and Heap.Free's fast path, written
		// out as they write it. (A helper shared with Heap.Free is over
		// the inlining budget, and the call cost Heap.Free's pair 2.5-3
		// ns, 10 %.)
		if c != nil {
			if c.freeOwned(s, uintptr(p)) {
				c.closeCache()
				return false, nil
			}
		} else if pc := h.fastP(pid); pc != nil {
			ok := pc.freeOwned(s, uintptr(p))
			h.fastPDone(pc)
			if ok {
				h.closeFast()
				return false, nil
			}
		}
	}
	return false, h.free(c, pid, p, s)
}

// classZeroFits is typedFree's check for a span of class 0: a large
// object's page count, a guarded object's rounded size; other spans fit.
func classZeroFits(s *spans.Span, size uintptr) bool {
	switch s.State() {
	case spans.StateLarge:
		return size > sizeclasses.MaxSmallSize && (size+pages.PageSize-1)/pages.PageSize == uintptr(s.NPages)
	case spans.StateGuarded:
		return guardObjSize(size) == uintptr(s.ElemSize)
	}
	return true
}

// wrongSize describes the object at addr in span s for a refused typed
// free.
func wrongSize(s *spans.Span, addr uintptr) error {
	switch {
	case s.Class != 0:
		return fmt.Errorf("%w: %#x holds an object of size class %d (%d bytes)", ErrInvalidPointer, addr, s.Class, s.ElemSize)
	case s.State() == spans.StateLarge:
		return fmt.Errorf("%w: %#x holds a large object of %d pages (%d bytes)", ErrInvalidPointer, addr, s.NPages, uintptr(s.NPages)*pages.PageSize)
	}
	return fmt.Errorf("%w: %#x holds a guarded object of %d bytes", ErrInvalidPointer, addr, s.ElemSize)
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
