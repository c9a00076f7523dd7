package bench

import (
	"fmt"
	"unsafe"

	"github.com/offheap/offheap/arena"
)

// offheapPool is a fresh arena.Heap with the default Config for each run,
// so no run inherits another's spans.
type offheapPool struct {
	h        *arena.Heap
	perCache bool // Worker returns a new Cache, not the Heap
}

func openOffheap(perCache bool) (Pool, error) {
	h, err := arena.NewHeap(arena.Config{})
	if err != nil {
		return nil, err
	}
	return &offheapPool{h: h, perCache: perCache}, nil
}

func heapProvider() Provider {
	return Provider{Name: NameHeap, Open: func() (Pool, error) { return openOffheap(false) }}
}

func cacheProvider() Provider {
	return Provider{Name: NameCache, Open: func() (Pool, error) { return openOffheap(true) }}
}

// Heap returns the run's heap, for tests that check it balances.
func (p *offheapPool) Heap() *arena.Heap { return p.h }

func (p *offheapPool) Worker() Allocator {
	if p.perCache {
		return cacheAlloc{p.h.NewCache()}
	}
	return heapAlloc{p.h}
}

func (p *offheapPool) Done(a Allocator) {
	if c, ok := a.(cacheAlloc); ok {
		if err := c.c.Close(); err != nil {
			panic(fmt.Sprintf("offheap cache close: %v", err))
		}
	}
}

// Close fails if the workload left objects live: every shape frees all it
// allocates, so a leftover is a bug in the workload or the heap.
func (p *offheapPool) Close() error {
	st := p.h.Stats()
	err := p.h.Close()
	if st.HeapObjects != 0 {
		return fmt.Errorf("%d objects still live after the run (Mallocs %d, Frees %d)", st.HeapObjects, st.Mallocs, st.Frees)
	}
	return err
}

// heapAlloc allocates through Heap.Alloc: the per-P caches, shared by all
// goroutines.
type heapAlloc struct{ h *arena.Heap }

func (a heapAlloc) Alloc(n int) unsafe.Pointer {
	p, err := a.h.Alloc(n)
	if err != nil {
		panic(fmt.Sprintf("offheap Heap.Alloc(%d): %v", n, err))
	}
	return p
}

func (a heapAlloc) Free(p unsafe.Pointer) {
	if err := a.h.Free(p); err != nil {
		panic(fmt.Sprintf("offheap Heap.Free(%p): %v", p, err))
	}
}

// cacheAlloc allocates through one worker's own Cache.
type cacheAlloc struct{ c *arena.Cache }

func (a cacheAlloc) Alloc(n int) unsafe.Pointer {
	p, err := a.c.Alloc(n)
	if err != nil {
		panic(fmt.Sprintf("offheap Cache.Alloc(%d): %v", n, err))
	}
	return p
}

func (a cacheAlloc) Free(p unsafe.Pointer) {
	if err := a.c.Free(p); err != nil {
		panic(fmt.Sprintf("offheap Cache.Free(%p): %v", p, err))
	}
}
