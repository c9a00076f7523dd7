package arena_test

import (
	"fmt"

	"github.com/offheap/offheap/arena"
)

func ExampleHeap_UsableSize() {
	h := newHeap(arena.Config{})
	defer h.Close()
	p, _ := h.Alloc(100)
	q, _ := h.Alloc(40 << 10)
	n, _ := h.UsableSize(p)
	m, _ := h.UsableSize(q)
	fmt.Println(n, m) // the size class; whole pages
	_ = h.Free(p)
	_, err := h.UsableSize(p)
	fmt.Println(err != nil)
	_ = h.Free(q)
	// Output:
	// 112 40960
	// true
}

func ExampleCache_UsableSize() {
	h := newHeap(arena.Config{})
	defer h.Close()
	c := h.NewCache()
	defer c.Close()
	p, _ := c.Alloc(1000)
	n, _ := c.UsableSize(p)
	fmt.Println(n)
	_ = c.Free(p)
	// Output: 1024
}

func ExampleHeap_Realloc() {
	h := newHeap(arena.Config{})
	defer h.Close()
	p, _ := h.Alloc(100)
	copy((*[100]byte)(p)[:], "hello")
	q, _ := h.Realloc(p, 110) // same class (112): in place
	fmt.Println(q == p)
	r, _ := h.Realloc(q, 1000) // moves; the contents come along
	fmt.Println(r == q, string((*[1000]byte)(r)[:5]), (*[1000]byte)(r)[999])
	_ = h.Free(r)
	// Output:
	// true
	// false hello 0
}

func ExampleCache_Realloc() {
	h := newHeap(arena.Config{})
	defer h.Close()
	c := h.NewCache()
	defer c.Close()
	p, _ := c.Realloc(nil, 64) // Realloc(nil, n) is Alloc(n)
	p, _ = c.Realloc(p, 64<<10)
	n, _ := c.UsableSize(p)
	fmt.Println(n)
	_ = c.Free(p)
	// Output: 65536
}

func ExampleAppend() {
	h := newHeap(arena.Config{})
	defer h.Close()
	var s []uint64
	for i := range 5 {
		var err error
		if s, err = arena.Append(h, s, uint64(i)); err != nil {
			panic(err)
		}
	}
	// The capacity doubles on a move (1, 2, 4, 8) and is then what the
	// slot holds: here the 64-byte class, 8 elements.
	fmt.Println(s, cap(s))
	// Three 24-byte records ask for 72 bytes; the 80-byte class holds 3.
	type rec struct{ A, B, C uint64 }
	r, _ := arena.Append(h, nil, rec{}, rec{}, rec{})
	fmt.Println(len(r), cap(r))
	r, _ = arena.Append(h, r, rec{A: 1})
	fmt.Println(len(r), cap(r), r[3].A)
	_ = arena.FreeSlice(h, s)
	_ = arena.FreeSlice(h, r)
	// Output:
	// [0 1 2 3 4] 8
	// 3 3
	// 4 6 1
}

func ExampleGrow() {
	h := newHeap(arena.Config{})
	defer h.Close()
	s, _ := arena.MakeSlice[uint64](h, 2, 13) // 104 bytes: the 112 class
	s[0], s[1] = 10, 20
	g, _ := arena.Grow(h, s, 12) // 14 fit in the slot: no move
	fmt.Println(&g[0] == &s[0], len(g), cap(g))
	g, _ = arena.Grow(h, g, 100) // moves; s is invalid now
	fmt.Println(g, cap(g) >= 102)
	_ = arena.FreeSlice(h, g)
	// Output:
	// true 2 14
	// [10 20] true
}
