package arena_test

import (
	"errors"
	"fmt"

	"github.com/offheap/offheap/arena"
)

// Order is a record kept off-heap: plain data only.
type Order struct {
	ID       uint64
	Price    float64
	Quantity int32
	Symbol   [8]byte
}

func ExampleNew() {
	h := newHeap(arena.Config{})
	defer h.Close()
	o, err := arena.New[Order](h)
	if err != nil {
		panic(err)
	}
	o.ID, o.Price = 1, 99.5
	copy(o.Symbol[:], "ACME")
	fmt.Println(o.ID, o.Price, string(o.Symbol[:4]))
	fmt.Println(arena.Free(h, o))
	// Output:
	// 1 99.5 ACME
	// <nil>
}

func ExampleFree() {
	h := newHeap(arena.Config{})
	defer h.Close()
	o, _ := arena.New[Order](h)
	fmt.Println(arena.Free(h, o))
	fmt.Println(errors.Is(arena.Free(h, o), arena.ErrDoubleFree))
	// Output:
	// <nil>
	// true
}

func ExampleMakeSlice() {
	h := newHeap(arena.Config{})
	defer h.Close()
	s, err := arena.MakeSlice[uint32](h, 3, 10)
	if err != nil {
		panic(err)
	}
	s = append(s, 7) // within cap: stays off-heap
	fmt.Println(len(s), cap(s), s)
	fmt.Println(arena.FreeSlice(h, s))
	// Output:
	// 4 10 [0 0 0 7]
	// <nil>
}

func ExampleFreeSlice() {
	h := newHeap(arena.Config{})
	defer h.Close()
	s, _ := arena.MakeSlice[float64](h, 100, 100)
	fmt.Println(arena.FreeSlice(h, s[:10])) // resliced from the start: fine
	empty, _ := arena.MakeSlice[float64](h, 0, 0)
	fmt.Println(arena.FreeSlice(h, empty)) // made without memory
	// Output:
	// <nil>
	// <nil>
}

func ExampleCheckType() {
	type Plain struct {
		A int64
		B [4]float32
	}
	type WithString struct {
		A    int64
		Name string
	}
	fmt.Println(arena.CheckType[Plain]())
	fmt.Println(arena.CheckType[WithString]())
	fmt.Println(errors.Is(arena.CheckType[*int](), arena.ErrPointerType))
	// Output:
	// <nil>
	// offheap: type contains Go pointers: arena_test.WithString holds arena_test.WithString.Name (string)
	// true
}

func ExampleCloneBytes() {
	h := newHeap(arena.Config{})
	defer h.Close()
	b, err := arena.CloneBytes(h, []byte("payload"))
	if err != nil {
		panic(err)
	}
	fmt.Println(string(b), len(b))
	fmt.Println(arena.FreeSlice(h, b))
	// Output:
	// payload 7
	// <nil>
}

func ExampleCloneString() {
	h := newHeap(arena.Config{})
	defer h.Close()
	s, _ := arena.CloneString(h, "key-42")
	fmt.Println(s, s == "key-42")
	fmt.Println(arena.FreeString(h, s)) // s must not be used after this
	// Output:
	// key-42 true
	// <nil>
}

func ExampleFreeString() {
	h := newHeap(arena.Config{})
	defer h.Close()
	s, _ := arena.CloneString(h, "temporary")
	fmt.Println(arena.FreeString(h, s))
	fmt.Println(arena.FreeString(h, "")) // nothing was allocated for ""
	// Output:
	// <nil>
	// <nil>
}
