package arena

import (
	"fmt"
	"slices"
	"unsafe"
)

// Growing off-heap slices. A slice from MakeSlice, Append or Grow through
// a Heap or Cache sits in one object, whose slot may hold more elements
// than the slice's capacity says (the size class rounds up): Grow and
// Append use that room before they move, and the slices they return carry
// the slot's real capacity, so that the next append within it needs no
// call into the heap at all.

// Append appends elems to s, as the built-in append does, with the
// memory from a: it returns s extended in place when the elements fit in
// cap(s), or in the object s sits in (see Grow), and otherwise moves the
// elements to a larger object and, through a Heap or Cache, frees the old
// one. After a move the old slice (and every slice sharing its memory) is
// invalid: use only the result. elems may be part of s.
//
// T follows New's rule (ErrPointerType otherwise). s must be empty of
// capacity (nil, or made without memory), or through a Heap or Cache start
// at the first element of an object of that heap, as MakeSlice, Append and
// Grow return it: any other s gets ErrInvalidPointer. Through a Region (or
// another Allocator) s is always copied out when it grows, and its old
// memory is left to its owner (the Region's Free). On any error s is
// returned unchanged and still valid. When Append copies or moves it does
// so in a section a concurrent Heap.Close waits for, as Alloc and Free;
// appending within cap(s) is the caller's own write to heap memory, like
// s[i] = x, which must not race with Close.
func Append[T any](a Allocator, s []T, elems ...T) ([]T, error) {
	f := factsOf[T]()
	if f.err != nil {
		return s, f.err
	}
	if len(elems) <= cap(s)-len(s) || f.size == 0 {
		return append(s, elems...), nil // no memory moves (a zero-size T has none)
	}
	t, old, err := growSlice(a, s, len(elems), f.size, elems)
	if err != nil {
		return s, err
	}
	if err := freeOld(a, old); err != nil {
		return s, err
	}
	return t, nil
}

// Grow makes room for n more elements after len(s), as slices.Grow does,
// with memory from a: it returns a slice of the same length and elements
// whose capacity is at least len(s)+n. The memory moves only when the
// object s sits in is too small: within the object (its UsableSize, which
// the size class may round past cap(s)) the same memory comes back with
// its real capacity. When it moves, the capacity grows geometrically, as
// append's does, the old object is freed (through a Heap or Cache), and
// the old slice is invalid. n < 0 gets ErrInvalidSize; other rules and
// errors as Append.
func Grow[T any](a Allocator, s []T, n int) ([]T, error) {
	f := factsOf[T]()
	if f.err != nil {
		return s, f.err
	}
	if n < 0 {
		return s, fmt.Errorf("%w: Grow by %d", ErrInvalidSize, n)
	}
	if n <= cap(s)-len(s) {
		return s, nil
	}
	if f.size == 0 {
		return slices.Grow(s, n), nil // zero-size elements take no memory
	}
	t, old, err := growSlice(a, s, n, f.size, nil)
	if err != nil {
		return s, err
	}
	if err := freeOld(a, old); err != nil {
		return s, err
	}
	return t, nil
}

// growSlice returns s with room for n more elements of elem bytes (n >
// cap(s)-len(s)): the same memory with the object's real capacity if that
// is enough, or a copy in a new object, with old the object to free (nil
// if none). Then it appends elems (Append's; nil for Grow), still in the
// section and before old is freed, as elems may lie in it.
func growSlice[T any](a Allocator, s []T, n int, elem uintptr, elems []T) (t []T, old unsafe.Pointer, err error) {
	need, ok := addNoOverflow(len(s), n)
	if !ok {
		return nil, nil, fmt.Errorf("%w: %d + %d elements", ErrInvalidSize, len(s), n)
	}
	h := objectHeap(a)
	if h != nil {
		// A slow section across the lookups and the copy (closing.go).
		if !h.enter() {
			return nil, nil, ErrClosed
		}
		defer h.leave()
	}
	data := unsafe.Pointer(unsafe.SliceData(s))
	if cap(s) > 0 && h != nil {
		_, usable, err := h.objectAt(uintptr(data))
		if err != nil {
			return nil, nil, err
		}
		if c := usable / elem; c >= uintptr(need) {
			return append(unsafe.Slice((*T)(data), c)[:len(s)], elems...), nil, nil
		}
		old = data
	}
	newCap := nextCap(cap(s), need)
	size, ok := mulNoOverflow(uint64(newCap), uint64(elem))
	if !ok || size > uint64(maxAllocSize) {
		return nil, nil, fmt.Errorf("%w: %d elements of %d bytes", ErrInvalidSize, newCap, elem)
	}
	p, err := a.Alloc(int(size))
	if err != nil {
		return nil, nil, err
	}
	realCap := uintptr(newCap)
	if h != nil {
		// The slot may hold more (and a guarded object has a size of its
		// own): hand the real capacity out, so the next Append needs no
		// call. A fresh object always passes.
		if _, usable, err := h.objectAt(uintptr(p)); err == nil {
			realCap = usable / elem
		}
	}
	t = unsafe.Slice((*T)(p), realCap)[:len(s)]
	copy(t, s)
	return append(t, elems...), old, nil
}

// freeOld frees the old object of a slice that moved, through a (a Heap or
// Cache; old is nil otherwise). It was checked live before the move, so an
// error means a concurrent free of the same memory, the caller's bug.
func freeOld(a Allocator, old unsafe.Pointer) error {
	if old == nil {
		return nil
	}
	return a.(Freer).Free(old)
}

// objectHeap returns the heap of a Heap or an open Cache, whose objects
// have sizes and can be freed one by one; nil for any other Allocator
// (a Region among them). A closed Cache gives nil too: its Alloc then
// refuses with ErrClosed.
func objectHeap(a Allocator) *Heap {
	switch v := a.(type) {
	case *Heap:
		return v
	case *Cache:
		if v != nil && !v.closed {
			return v.h
		}
	}
	return nil
}

// nextCap is the capacity a slice of capacity old grows to when it needs
// need (> old) elements: doubling while small, then by a quarter, as the
// built-in append does, so appending n elements one at a time costs
// O(n) copying. The object's size class then rounds it up further.
func nextCap(old, need int) int {
	if need > 2*old || old <= 0 {
		return need
	}
	if old < appendDoubleBelow {
		return 2 * old
	}
	c := old
	for c < need {
		c += (c + 3*appendDoubleBelow) / 4
		if c <= 0 { // overflow: ask for exactly what is needed
			return need
		}
	}
	return c
}

// appendDoubleBelow is the capacity below which a moving slice doubles;
// above it grows by about a quarter plus a constant, the built-in append's
// rule (runtime.nextslicecap), so that a large slice does not waste up to
// half its memory.
const appendDoubleBelow = 256

// addNoOverflow returns a+b for non-negative a, b and whether it fit.
func addNoOverflow(a, b int) (int, bool) {
	s := a + b
	return s, s >= a
}
