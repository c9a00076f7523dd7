package arena_test

import (
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/offheap/offheap/arena"
)

func ExampleHeap_Stats() {
	h := newHeap(arena.Config{})
	defer h.Close()
	p, _ := h.Alloc(100)
	q, _ := h.Alloc(100 << 10) // 13 pages
	st := h.Stats()
	fmt.Println(st.HeapObjects, st.HeapAlloc, st.LargeObjects)
	_ = h.Free(p)
	_ = h.Free(q)
	fmt.Println(h.Stats().HeapObjects)
	// Output:
	// 2 106608 1
	// 0
}

func ExampleHeap_Verify() {
	h := newHeap(arena.Config{})
	defer h.Close()
	for range 100 {
		_, _ = h.Alloc(64)
	}
	fmt.Println(h.Verify())
	// Output: <nil>
}

func ExampleHeap_Scavenge() {
	h := newHeap(arena.Config{})
	defer h.Close()
	p, _ := h.Alloc(1 << 20)
	_ = h.Free(p)
	released := h.Scavenge() // returns free memory to the kernel now
	fmt.Println(released >= 1<<20, h.Stats().HeapReleased >= 1<<20)
	// Output: true true
}

func ExampleHeap_Mappings() {
	h := newHeap(arena.Config{})
	defer h.Close()
	for _, m := range h.Mappings() {
		fmt.Println(m.Name, m.Size>>20)
	}
	// Output: heap 64
}

func ExampleHeap_PageMap() {
	h := newHeap(arena.Config{})
	defer h.Close()
	p, _ := h.Alloc(10 * arena.PageSize)
	var counts [3]int
	for _, st := range h.PageMap(nil) {
		counts[st]++
	}
	fmt.Println(counts[arena.PageInUse] >= 10)
	_ = h.Free(p)
	// Output: true
}

func ExampleHeap_ProfileRate() {
	h := newHeap(arena.Config{ProfileRate: 1}) // sample every allocation
	defer h.Close()
	fmt.Println(h.ProfileRate())
	// Output: 1
}

func ExampleHeap_ProfileRecords() {
	h := newHeap(arena.Config{ProfileRate: 1})
	defer h.Close()
	p, _ := h.Alloc(100)
	recs := h.ProfileRecords()
	fmt.Println(len(recs), recs[0].Size, recs[0].Addr == uintptr(p), len(recs[0].Stack) > 0)
	_ = h.Free(p)
	fmt.Println(len(h.ProfileRecords()))
	// Output:
	// 1 112 true true
	// 0
}

func ExampleHeap_Explain() {
	h := newHeap(arena.Config{GuardSampleRate: 1}) // guard every allocation
	defer h.Close()
	p, _ := h.Alloc(100)
	// An overrun faults at the guard page; under debug.SetPanicOnFault the
	// fault's address leads back to the object.
	fault := uintptr(p) + 112
	func() {
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer func() {
			r := recover()
			addr := r.(interface{ Addr() uintptr }).Addr()
			info, ok := h.Explain(addr)
			fmt.Println(ok, info.Guarded, info.Size, info.Addr == uintptr(p), addr == fault)
		}()
		(*[113]byte)(p)[112] = 1
	}()
	// Output: true true 100 true true
}

func ExampleAllocInfo_String() {
	h := newHeap(arena.Config{GuardSampleRate: 1})
	defer h.Close()
	p, _ := h.Alloc(100)
	info, _ := h.Explain(uintptr(p))
	first, _, _ := strings.Cut(info.String(), " at ")
	fmt.Println(first)
	fmt.Println(strings.Contains(info.String(), "ExampleAllocInfo_String")) // the allocating stack
	// Output:
	// live guarded object of 100 bytes
	// true
}
