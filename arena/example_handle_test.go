package arena_test

import (
	"fmt"

	"github.com/offheap/offheap/arena"
)

// Entry is an off-heap record that links to the next by Ref: an integer
// the GC does not scan, so the record stays pointer-free.
type Entry struct {
	Key  uint64
	Next arena.Ref[Entry]
}

func ExampleRef_Get() {
	h := newHeap(arena.Config{})
	defer h.Close()
	var head arena.Ref[Entry]
	for k := uint64(1); k <= 3; k++ {
		r, err := arena.NewRef[Entry](h)
		if err != nil {
			panic(err)
		}
		e := r.Get(h)
		e.Key, e.Next = k, head
		head = r
	}
	for r := head; r != 0; {
		e := r.Get(h)
		fmt.Print(e.Key, " ")
		r = e.Next
		_ = arena.Free(h, e)
	}
	fmt.Println()
	// Output: 3 2 1
}

func ExampleNewRef() {
	h := newHeap(arena.Config{})
	defer h.Close()
	r, err := arena.NewRef[Entry](h)
	fmt.Println(err, r != 0, r.Get(h).Key)
	_ = arena.Free(h, r.Get(h))
	var none arena.Ref[Entry] // the zero Ref is nil
	fmt.Println(none.Get(h) == nil)
	// Output:
	// <nil> true 0
	// true
}

func ExampleRefOf() {
	h := newHeap(arena.Config{})
	defer h.Close()
	e, _ := arena.New[Entry](h)
	r := arena.RefOf(e)
	fmt.Println(r.Get(h) == e)
	_ = arena.Free(h, e)
	// Output: true
}

func ExampleRef_Handle() {
	h := newHeap(arena.Config{})
	defer h.Close()
	r, _ := arena.NewRef[Entry](h)
	x := r.Handle()
	b, _ := arena.Bytes(h, x, 16) // the Entry's bytes
	b[0] = 42
	fmt.Println(r.Get(h).Key)
	_ = arena.Free(h, r.Get(h))
	// Output: 42
}

func ExampleAllocHandle() {
	h := newHeap(arena.Config{})
	defer h.Close()
	x, err := arena.AllocHandle(h, 64)
	if err != nil {
		panic(err)
	}
	b, _ := arena.Bytes(h, x, 64)
	copy(b, "stored off-heap")
	fmt.Println(string(b[:15]))
	fmt.Println(h.Free(x.Pointer(h)))
	// Output:
	// stored off-heap
	// <nil>
}

func ExampleHandleOf() {
	h := newHeap(arena.Config{})
	defer h.Close()
	p, _ := h.Alloc(8)
	x := arena.HandleOf(p)
	fmt.Println(x.Pointer(h) == p, arena.HandleOf(nil) == 0)
	_ = h.Free(p)
	// Output: true true
}

func ExampleHandle_Pointer() {
	h := newHeap(arena.Config{})
	defer h.Close()
	x, _ := arena.AllocHandle(h, 8)
	p := x.Pointer(h)
	fmt.Println(p != nil, arena.Handle(0).Pointer(h) == nil)
	func() {
		defer func() { fmt.Println(recover() != nil) }()
		_ = arena.Handle(1).Pointer(h) // not in the heap: panics
	}()
	_ = h.Free(p)
	// Output:
	// true true
	// true
}

func ExampleBytes() {
	h := newHeap(arena.Config{})
	defer h.Close()
	x, _ := arena.AllocHandle(h, 100)
	b, err := arena.Bytes(h, x, 112) // the whole usable size (class 112)
	fmt.Println(len(b), err)
	_, err = arena.Bytes(h, x, 113)
	fmt.Println(err != nil)
	_ = h.Free(x.Pointer(h))
	// Output:
	// 112 <nil>
	// true
}

func ExampleView() {
	h := newHeap(arena.Config{})
	defer h.Close()
	x, _ := arena.AllocHandle(h, 4*8)
	v, err := arena.View[uint64](h, x, 4)
	if err != nil {
		panic(err)
	}
	for i := range v {
		v[i] = uint64(i * i)
	}
	w, _ := arena.View[uint32](h, x, 8) // the same memory, another type
	fmt.Println(v, w[2], w[4])
	_ = h.Free(x.Pointer(h))
	// Output: [0 1 4 9] 1 4
}
