package arena

import (
	"fmt"
	"unsafe"

	"github.com/offheap/offheap/spans"
)

// Handles and views: references to offheap objects that are plain
// integers, and slices over them, so that code using the heap needs no
// unsafe of its own.
//
// A Handle is an object's address held as a uintptr. The GC does not scan
// it (nor needs to: it never points into the Go heap), so it can be
// stored anywhere, offheap records included: that is how one offheap
// record refers to another. Turning it back into a pointer goes through
// the Heap (Handle.Pointer, Ref.Get): the result is derived from the
// heap's base pointer with unsafe.Add, the one conversion heap.go makes
// for every address it hands out, and an address outside the heap is
// caught there instead of becoming a pointer to arbitrary memory.

// Handle refers to an object of a Heap (or to Region memory) by its
// address, as a plain integer the garbage collector does not scan, so it
// may be stored in offheap memory. The zero Handle is nil.
//
// A Handle is valid only while its object is live and its Heap is open:
// after the object is freed it names whatever reuses the memory, and after
// Close nothing. Nothing checks this when it is used (Pointer is an
// addition and a bounds check); Bytes and View check that it is the start
// of a live object.
type Handle uintptr

// HandleOf returns the Handle of p, a pointer into a Heap's memory (such
// as Alloc returns); nil gives the nil Handle.
func HandleOf(p unsafe.Pointer) Handle { return Handle(uintptr(p)) }

// AllocHandle allocates size zeroed bytes from a, as a.Alloc, and returns
// them as a Handle.
func AllocHandle(a Allocator, size int) (Handle, error) {
	p, err := a.Alloc(size)
	return HandleOf(p), err
}

// Pointer returns the memory x refers to in h, nil for the nil Handle. It
// panics if x is not an address in h's reservation (a Handle of another
// heap, or a corrupted one): such a Handle must never become a pointer.
// It does not check that the object is live; Bytes and View do.
func (x Handle) Pointer(h *Heap) unsafe.Pointer {
	if x == 0 {
		return nil
	}
	off := uintptr(x) - h.base
	if off >= h.limit-h.base {
		panic(fmt.Sprintf("offheap: handle %#x is outside the heap [%#x, %#x)", uintptr(x), h.base, h.limit))
	}
	return unsafe.Add(h.basePtr, off)
}

// Bytes returns the first n bytes of the object x refers to in h, as a
// []byte over the offheap memory (valid while the object is: see Handle).
// x must be the start of a live object (ErrInvalidPointer,
// ErrDoubleFree otherwise) with at least n usable bytes (ErrInvalidSize
// otherwise, and for n < 0). Region memory is accepted up to the end of
// the region's span, which is all that can be checked there.
func Bytes(h *Heap, x Handle, n int) ([]byte, error) {
	return View[byte](h, x, n)
}

// View returns the object x refers to in h as a []T of n elements, len
// and cap n, over the offheap memory: a typed view, valid while the object
// is. T follows New's rule (ErrPointerType otherwise); x and n are checked
// as by Bytes, n elements of T against the object's usable size.
func View[T any](h *Heap, x Handle, n int) ([]T, error) {
	f := factsOf[T]()
	if f.err != nil {
		return nil, f.err
	}
	if n < 0 {
		return nil, fmt.Errorf("%w: a view of %d elements", ErrInvalidSize, n)
	}
	size, ok := mulNoOverflow(uint64(n), uint64(f.size))
	if !ok {
		return nil, fmt.Errorf("%w: a view of %d elements of %d bytes", ErrInvalidSize, n, f.size)
	}
	if err := h.checkView(uintptr(x), size); err != nil {
		return nil, err
	}
	return unsafe.Slice((*T)(x.Pointer(h)), n), nil
}

// checkView checks that size bytes at addr lie in one live object (or in
// one region span, from addr on).
func (h *Heap) checkView(addr uintptr, size uint64) error {
	shard, ok := h.enterByP() // per-P: see UsableSize
	if !ok {
		return ErrClosed
	}
	defer h.leaveByP(shard)
	usable := uint64(0)
	if s := h.spans.Lookup(addr); s != nil && s.Class == 0 && s.State() == spans.StateManual {
		usable = uint64(s.End() - addr)
	} else {
		_, n, err := h.objectAt(addr)
		if err != nil {
			return err
		}
		usable = uint64(n)
	}
	if size > usable {
		return fmt.Errorf("%w: a view of %d bytes of the %d-byte object at %#x", ErrInvalidSize, size, usable, addr)
	}
	return nil
}

// Ref is a typed Handle: the address of a T in a Heap, as an integer the
// GC does not scan, storable in offheap records. The zero Ref is nil. The
// same validity rule as Handle's holds: only while the T is live and the
// Heap open.
type Ref[T any] uintptr

// NewRef allocates a zeroed T from a, as New, and returns its Ref.
func NewRef[T any](a Allocator) (Ref[T], error) {
	p, err := New[T](a)
	return RefOf(p), err
}

// RefOf returns the Ref of p, a T in a Heap's memory; nil gives the nil
// Ref.
func RefOf[T any](p *T) Ref[T] { return Ref[T](uintptr(unsafe.Pointer(p))) }

// Get returns the T r refers to in h, nil for the nil Ref. It panics, as
// Handle.Pointer, if r is not an address in h.
func (r Ref[T]) Get(h *Heap) *T { return (*T)(Handle(r).Pointer(h)) }

// Handle returns r as an untyped Handle.
func (r Ref[T]) Handle() Handle { return Handle(r) }
