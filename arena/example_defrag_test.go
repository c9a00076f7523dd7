package arena_test

import (
	"fmt"
	"unsafe"

	"github.com/offheap/offheap/arena"
)

// ExampleHeap_DefragHint moves the survivors of a 90 % delete out of the
// spans they keep nearly empty: the hint picks them, and once they are
// moved the heap's in-use memory comes down to near its live bytes.
func ExampleHeap_DefragHint() {
	h, err := arena.NewHeap(arena.Config{Reserve: 256 << 20})
	if err != nil {
		panic(err)
	}
	defer h.Close()
	// A Cache per phase, closed after it, so the spans end up on the
	// heap's central lists (a span a cache still owns is never hinted).
	c := h.NewCache()
	objs := make([]unsafe.Pointer, 20000)
	for i := range objs {
		if objs[i], err = c.Alloc(64); err != nil {
			panic(err)
		}
	}
	var live []unsafe.Pointer
	for i, p := range objs {
		if i%10 == 0 {
			live = append(live, p)
		} else if err := c.Free(p); err != nil {
			panic(err)
		}
	}
	c.Close()
	before := h.Stats()

	// The mover's cache refills from the sparse spans too; the survivors
	// in a span it has taken are not hinted any more, and stay.
	mover := h.NewCache()
	moved := 0
	for i, p := range live {
		if !h.DefragHint(p) {
			continue
		}
		q, err := mover.Alloc(64)
		if err != nil {
			panic(err)
		}
		copy(unsafe.Slice((*byte)(q), 64), unsafe.Slice((*byte)(p), 64))
		if err := mover.Free(p); err != nil {
			panic(err)
		}
		live[i] = q
		moved++
	}
	mover.Close()
	after := h.Stats()
	fmt.Println("most survivors moved:", moved > len(live)*3/4)
	fmt.Println("in use before: over 5x live:", before.HeapInuse > 5*before.HeapAlloc)
	fmt.Println("in use after: under 1.5x live:", float64(after.HeapInuse) < 1.5*float64(after.HeapAlloc))
	// Output:
	// most survivors moved: true
	// in use before: over 5x live: true
	// in use after: under 1.5x live: true
}

// ExampleCache_DefragHint asks through a Cache: the same answer as the
// Heap's, and false for an object in a span that Cache itself allocates
// from.
func ExampleCache_DefragHint() {
	h, err := arena.NewHeap(arena.Config{Reserve: 64 << 20})
	if err != nil {
		panic(err)
	}
	defer h.Close()
	c := h.NewCache()
	defer c.Close()
	p, err := c.Alloc(64)
	if err != nil {
		panic(err)
	}
	fmt.Println("in a span the cache owns:", c.DefragHint(p))
	fmt.Println("not a live object:", c.DefragHint(nil))
	// Output:
	// in a span the cache owns: false
	// not a live object: false
}
