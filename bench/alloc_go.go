package bench

import "unsafe"

// goPool is the Go heap. A workload keeps every live object's pointer in
// its own slices ([]unsafe.Pointer, which the GC scans), so the objects
// stay reachable exactly as long as the workload holds them: the GC marks
// the same live set an offheap run keeps off its books, and Free only
// drops the reference.
type goPool struct{}

func goProvider() Provider {
	return Provider{Name: NameGo, Open: func() (Pool, error) { return goPool{}, nil }}
}

func (goPool) Worker() Allocator { return goAlloc{} }
func (goPool) Done(Allocator)    {}
func (goPool) Close() error      { return nil }

type goAlloc struct{}

// Alloc is make([]byte, n); n is not a constant and the pointer leaves
// through an interface, so it is a real heap allocation.
func (goAlloc) Alloc(n int) unsafe.Pointer {
	return unsafe.Pointer(unsafe.SliceData(make([]byte, n)))
}

func (goAlloc) Free(unsafe.Pointer) {}
