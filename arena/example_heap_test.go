package arena_test

import (
	"errors"
	"fmt"

	"github.com/offheap/offheap/arena"
)

// newHeap makes the small heap the examples use; the background scavenger
// is off so that figures do not move under the example.
func newHeap(cfg arena.Config) *arena.Heap {
	if cfg.Reserve == 0 {
		cfg.Reserve = 64 << 20
	}
	cfg.ScavengeDelay = -1
	h, err := arena.NewHeap(cfg)
	if err != nil {
		panic(err)
	}
	return h
}

func ExampleNewHeap() {
	h, err := arena.NewHeap(arena.Config{Reserve: 64 << 20, Name: "example"})
	if err != nil {
		panic(err)
	}
	defer h.Close()
	fmt.Println(h.Reserved() >> 20)
	// Output: 64
}

func ExampleHeap_Alloc() {
	h := newHeap(arena.Config{})
	defer h.Close()
	p, err := h.Alloc(100)
	if err != nil {
		panic(err)
	}
	b := (*[100]byte)(p)
	fmt.Println(b[0], b[99]) // zeroed
	b[0] = 1
	fmt.Println(h.Free(p))
	// Output:
	// 0 0
	// <nil>
}

func ExampleHeap_Free() {
	h := newHeap(arena.Config{})
	defer h.Close()
	p, _ := h.Alloc(64)
	fmt.Println(h.Free(p))
	err := h.Free(p)
	fmt.Println(errors.Is(err, arena.ErrDoubleFree))
	// Output:
	// <nil>
	// true
}

func ExampleHeap_Close() {
	h := newHeap(arena.Config{})
	fmt.Println(h.Close())
	_, err := h.Alloc(8)
	fmt.Println(errors.Is(err, arena.ErrClosed), errors.Is(h.Close(), arena.ErrClosed))
	// Output:
	// <nil>
	// true true
}

func ExampleHeap_Reserved() {
	h := newHeap(arena.Config{Reserve: 128 << 20})
	defer h.Close()
	fmt.Println(h.Reserved() == 128<<20)
	// Output: true
}

func ExampleHeap_NewCache() {
	h := newHeap(arena.Config{})
	defer h.Close()
	c := h.NewCache() // one per worker goroutine
	defer c.Close()
	p, _ := c.Alloc(32)
	fmt.Println(h.Free(p)) // any Cache, or the Heap, may free it
	// Output: <nil>
}

func ExampleCache_Alloc() {
	h := newHeap(arena.Config{})
	defer h.Close()
	c := h.NewCache()
	defer c.Close()
	p, err := c.Alloc(48)
	if err != nil {
		panic(err)
	}
	(*[48]byte)(p)[47] = 7
	fmt.Println(c.Free(p))
	// Output: <nil>
}

func ExampleCache_Free() {
	h := newHeap(arena.Config{})
	defer h.Close()
	c := h.NewCache()
	defer c.Close()
	p, _ := h.Alloc(64)
	fmt.Println(c.Free(p))
	fmt.Println(errors.Is(c.Free(p), arena.ErrDoubleFree))
	// Output:
	// <nil>
	// true
}

func ExampleCache_Close() {
	h := newHeap(arena.Config{})
	defer h.Close()
	c := h.NewCache()
	p, _ := c.Alloc(64)
	fmt.Println(c.Close())
	_, err := c.Alloc(64)
	fmt.Println(errors.Is(err, arena.ErrClosed))
	fmt.Println(h.Free(p)) // its objects outlive it
	// Output:
	// <nil>
	// true
	// <nil>
}

func ExampleHeap_NewRegion() {
	h := newHeap(arena.Config{})
	defer h.Close()
	r := h.NewRegion()
	for range 1000 {
		if _, err := r.Alloc(40); err != nil {
			panic(err)
		}
	}
	fmt.Println(r.Free(), h.Stats().RegionInuse)
	// Output: <nil> 0
}

func ExampleRegion_Alloc() {
	h := newHeap(arena.Config{})
	defer h.Close()
	r := h.NewRegion()
	defer r.Free()
	p, _ := r.Alloc(24)
	(*[24]byte)(p)[0] = 1
	fmt.Println(errors.Is(h.Free(p), arena.ErrInvalidPointer)) // only the region frees it
	// Output: true
}

func ExampleRegion_Free() {
	h := newHeap(arena.Config{})
	defer h.Close()
	r := h.NewRegion()
	_, _ = r.Alloc(100)
	fmt.Println(r.Free())
	_, err := r.Alloc(100)
	fmt.Println(errors.Is(err, arena.ErrClosed))
	// Output:
	// <nil>
	// true
}

func ExampleRegion_Stats() {
	h := newHeap(arena.Config{})
	defer h.Close()
	r := h.NewRegion()
	defer r.Free()
	_, _ = r.Alloc(100) // rounded to 112
	_, _ = r.Alloc(8)   // rounded to 16
	st := r.Stats()
	fmt.Println(st.Used, st.Spans, st.Held)
	// Output: 128 1 65536
}
