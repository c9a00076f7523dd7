//go:build goexperiment.arenas

package bench

import (
	"arena"
	"unsafe"
)

// arenaPool is Go's experimental arena package (GOEXPERIMENT=arenas):
// objects are allocated from an arena and freed all at once with it.
// There is no per-object free and an arena is not safe for concurrent
// use, so it runs only the bulk-freeing shapes, one arena per worker.
type arenaPool struct{}

func arenaProviders() []Provider {
	return []Provider{{Name: NameGoArena, BulkOnly: true, Open: func() (Pool, error) { return arenaPool{}, nil }}}
}

func (arenaPool) Worker() Allocator { return &arenaAlloc{a: arena.NewArena()} }
func (arenaPool) Done(a Allocator)  { a.(*arenaAlloc).a.Free() }
func (arenaPool) Close() error      { return nil }

type arenaAlloc struct{ a *arena.Arena }

func (a *arenaAlloc) Alloc(n int) unsafe.Pointer {
	return unsafe.Pointer(unsafe.SliceData(arena.MakeSlice[byte](a.a, n, n)))
}

// Free is a no-op: the batch's memory goes back in Reset.
func (a *arenaAlloc) Free(unsafe.Pointer) {}

// Reset frees the whole arena and starts a new one for the next batch.
func (a *arenaAlloc) Reset() {
	a.a.Free()
	a.a = arena.NewArena()
}
