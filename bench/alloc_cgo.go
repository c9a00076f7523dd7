//go:build cgo

package bench

// #include <stdlib.h>
import "C"

import (
	"fmt"
	"unsafe"
)

// cgoPool is C's calloc and free called through cgo, as pebble manages its
// block cache: the C allocator's speed plus a cgo call each way.
type cgoPool struct{}

func cgoProviders() []Provider {
	return []Provider{{Name: NameCgo, Open: func() (Pool, error) { return cgoPool{}, nil }}}
}

func (cgoPool) Worker() Allocator { return cgoAlloc{} }
func (cgoPool) Done(Allocator)    {}
func (cgoPool) Close() error      { return nil }

type cgoAlloc struct{}

// Alloc uses calloc: pebble zeroes its manual buffers, and offheap and
// make hand out zeroed memory too.
func (cgoAlloc) Alloc(n int) unsafe.Pointer {
	p := C.calloc(1, C.size_t(n))
	if p == nil {
		panic(fmt.Sprintf("calloc(%d) failed", n))
	}
	return p
}

func (cgoAlloc) Free(p unsafe.Pointer) { C.free(p) }
