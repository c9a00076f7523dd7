package arena_test

import (
	"errors"
	"fmt"

	"github.com/offheap/offheap/arena"
)

// A record that may live off-heap: numbers, arrays and structs of them.
type Point struct {
	X, Y  float64
	ID    uint64
	Label [16]byte // fixed-size text instead of a string
}

// A record that may not: its string points into the Go heap, and the GC
// does not see the reference once it is stored off-heap.
type Named struct {
	ID   uint64
	Name string
}

// Example shows what may be stored off-heap and what may not.
func Example() {
	h, err := arena.NewHeap(arena.Config{Reserve: 64 << 20})
	if err != nil {
		panic(err)
	}
	defer h.Close()

	p, err := arena.New[Point](h)
	if err != nil {
		panic(err)
	}
	p.X, p.Y, p.ID = 1.5, -2, 42
	copy(p.Label[:], "origin")
	fmt.Println(p.ID, string(p.Label[:6]))

	_, err = arena.New[Named](h)
	fmt.Println(errors.Is(err, arena.ErrPointerType), err)

	// Strings and byte slices can be copied off-heap explicitly; the copy
	// is valid until it is freed.
	s, _ := arena.CloneString(h, "hello")
	fmt.Println(s)
	_ = arena.FreeString(h, s)
	_ = arena.Free(h, p)

	// A region frees everything it handed out at once.
	r := h.NewRegion()
	pts, _ := arena.MakeSlice[Point](r, 3, 3)
	pts[2].ID = 7
	fmt.Println(len(pts), pts[2].ID)
	_ = r.Free()

	fmt.Println(h.Stats().HeapObjects)
	// Output:
	// 42 origin
	// true offheap: type contains Go pointers: arena_test.Named holds arena_test.Named.Name (string)
	// hello
	// 3 7
	// 0
}
