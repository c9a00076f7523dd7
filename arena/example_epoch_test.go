package arena_test

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/offheap/offheap/arena"
)

// Setting is a record that readers look up while a writer replaces it.
type Setting struct {
	Version uint64
	Limit   uint64
}

func ExampleHeap_NewEpoch() {
	h := newHeap(arena.Config{})
	defer h.Close()
	e := h.NewEpoch()

	var cur atomic.Uintptr // the published Setting, as a Ref
	publish := func(v uint64) uintptr {
		r, _ := arena.NewRef[Setting](h)
		s := r.Get(h)
		s.Version, s.Limit = v, 100*v
		return uintptr(r)
	}
	cur.Store(publish(1))

	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() { // readers take no lock
			defer wg.Done()
			rd := e.NewReader()
			defer rd.Close()
			for range 1000 {
				rd.Enter()
				s := arena.Ref[Setting](cur.Load()).Get(h)
				if s.Limit != 100*s.Version {
					panic("read a freed Setting")
				}
				rd.Exit()
			}
		}()
	}
	for v := uint64(2); v <= 100; v++ { // the writer replaces and retires
		old := cur.Swap(publish(v))
		if err := e.Retire(arena.Handle(old).Pointer(h)); err != nil {
			panic(err)
		}
	}
	wg.Wait()
	_, err := e.Reclaim()
	fmt.Println(err, e.Pending(), h.Stats().HeapObjects)
	// Output: <nil> 0 1
}

func ExampleEpoch_Retire() {
	h := newHeap(arena.Config{})
	defer h.Close()
	e := h.NewEpoch()
	rd := e.NewReader()
	defer rd.Close()
	p, _ := h.Alloc(64)
	rd.Enter() // a reader that may have seen p
	_ = e.Retire(p)
	n, _ := e.Reclaim()
	fmt.Println(n, e.Pending()) // held back
	rd.Exit()
	n, _ = e.Reclaim()
	fmt.Println(n, e.Pending())
	// Output:
	// 0 1
	// 1 0
}

func ExampleEpoch_Reclaim() {
	h := newHeap(arena.Config{})
	defer h.Close()
	e := h.NewEpoch()
	for range 10 {
		p, _ := h.Alloc(32)
		_ = e.Retire(p)
	}
	n, err := e.Reclaim() // no reader inside: everything goes
	fmt.Println(n, err, h.Stats().HeapObjects)
	// Output: 10 <nil> 0
}

func ExampleEpoch_Pending() {
	h := newHeap(arena.Config{})
	defer h.Close()
	e := h.NewEpoch()
	p, _ := h.Alloc(32)
	_ = e.Retire(p)
	fmt.Println(e.Pending())
	_, _ = e.Reclaim()
	fmt.Println(e.Pending())
	// Output:
	// 1
	// 0
}

func ExampleEpoch_NewReader() {
	h := newHeap(arena.Config{})
	defer h.Close()
	e := h.NewEpoch()
	rd := e.NewReader() // one per reading goroutine
	rd.Enter()
	rd.Exit()
	rd.Close()
	fmt.Println(e.Pending())
	// Output: 0
}

func ExampleEpochReader_Enter() {
	h := newHeap(arena.Config{})
	defer h.Close()
	e := h.NewEpoch()
	rd := e.NewReader()
	defer rd.Close()
	r, _ := arena.NewRef[Setting](h)
	rd.Enter()
	s := r.Get(h) // safe to read until Exit, even if retired meanwhile
	_ = e.Retire(arena.Handle(r).Pointer(h))
	_, _ = e.Reclaim()
	fmt.Println(s.Version, e.Pending())
	rd.Exit()
	_, _ = e.Reclaim()
	fmt.Println(e.Pending())
	// Output:
	// 0 1
	// 0
}

func ExampleEpochReader_Exit() {
	h := newHeap(arena.Config{})
	defer h.Close()
	e := h.NewEpoch()
	rd := e.NewReader()
	defer rd.Close()
	p, _ := h.Alloc(8)
	rd.Enter()
	_ = e.Retire(p)
	rd.Exit() // after this the reader holds nothing back
	n, _ := e.Reclaim()
	fmt.Println(n)
	// Output: 1
}

func ExampleEpochReader_Close() {
	h := newHeap(arena.Config{})
	defer h.Close()
	e := h.NewEpoch()
	rd := e.NewReader()
	p, _ := h.Alloc(8)
	rd.Enter()
	_ = e.Retire(p)
	rd.Close() // a closed reader no longer counts
	n, _ := e.Reclaim()
	fmt.Println(n)
	// Output: 1
}
