package container_test

import (
	"errors"
	"fmt"
	"slices"

	"github.com/offheap/offheap/arena"
	"github.com/offheap/offheap/container"
)

// newHeap returns a heap for the examples: 64 MiB of address space,
// nothing committed until used.
func newHeap() *arena.Heap {
	h, err := arena.NewHeap(arena.Config{Reserve: 64 << 20})
	if err != nil {
		panic(err)
	}
	return h
}

// Example keeps an index off the Go heap: the map's buckets and entries
// are Heap memory, and closing the map gives every byte back.
func Example() {
	h := newHeap()
	defer h.Close()

	idx, err := container.NewBytesMap(h, 1000)
	if err != nil {
		panic(err)
	}
	for i := range 1000 {
		_ = idx.SetString(fmt.Sprintf("user:%d", i), fmt.Appendf(nil, "profile of user %d", i))
	}
	v, _ := idx.GetString(nil, "user:42")
	fmt.Println(string(v))
	// One Heap object per entry, plus the bucket directory and one
	// segment of 1024 buckets.
	fmt.Println(idx.Len(), "entries,", h.Stats().HeapObjects, "heap objects")

	_ = idx.Close()
	fmt.Println(h.Stats().HeapObjects, "heap objects after Close")
	// Output:
	// profile of user 42
	// 1000 entries, 1002 heap objects
	// 0 heap objects after Close
}

func ExampleNewBytesMap() {
	h := newHeap()
	defer h.Close()

	m, err := container.NewBytesMap(h, 0) // no hint: the table is made by the first Set
	fmt.Println(m.Len(), err)

	_, err = container.NewBytesMap(nil, 0)
	fmt.Println(errors.Is(err, container.ErrInvalidArgument))
	// Output:
	// 0 <nil>
	// true
}

func ExampleBytesMap() {
	h := newHeap()
	defer h.Close()
	m, _ := container.NewBytesMap(h, 0)
	defer m.Close()

	_ = m.Set([]byte("colour"), []byte("blue"))
	_ = m.Set([]byte("colour"), []byte("green")) // replaces
	v, ok := m.Get(nil, []byte("colour"))
	fmt.Println(string(v), ok, m.Len())
	// Output: green true 1
}

func ExampleBytesMap_Set() {
	h := newHeap()
	defer h.Close()
	m, _ := container.NewBytesMap(h, 0)
	defer m.Close()

	key, value := []byte("k"), []byte("v1")
	_ = m.Set(key, value)
	value[1] = '2' // the map holds its own copy
	v, _ := m.Get(nil, key)
	fmt.Println(string(v))
	// Output: v1
}

// A heap with a memory limit refuses a Set that does not fit, and the map
// is unchanged.
func ExampleBytesMap_Set_outOfMemory() {
	h, _ := arena.NewHeap(arena.Config{Reserve: 64 << 20, MemoryLimit: 4 << 20})
	defer h.Close()
	m, _ := container.NewBytesMap(h, 0)
	defer m.Close()

	err := m.Set([]byte("big"), make([]byte, 8<<20))
	fmt.Println(errors.Is(err, arena.ErrOutOfMemory), m.Has([]byte("big")), m.Len())
	// Output: true false 0
}

func ExampleBytesMap_SetString() {
	h := newHeap()
	defer h.Close()
	m, _ := container.NewBytesMap(h, 0)
	defer m.Close()

	_ = m.SetString("answer", []byte("42"))
	fmt.Println(m.Has([]byte("answer"))) // the same key as []byte
	// Output: true
}

func ExampleBytesMap_Get() {
	h := newHeap()
	defer h.Close()
	m, _ := container.NewBytesMap(h, 0)
	defer m.Close()
	_ = m.SetString("a", []byte("apple"))

	buf := []byte("fruit: ")
	buf, ok := m.Get(buf, []byte("a")) // appends to buf
	fmt.Println(string(buf), ok)
	_, ok = m.Get(nil, []byte("b"))
	fmt.Println(ok)
	// Output:
	// fruit: apple true
	// false
}

func ExampleBytesMap_GetString() {
	h := newHeap()
	defer h.Close()
	m, _ := container.NewBytesMap(h, 0)
	defer m.Close()
	_ = m.Set([]byte("a"), []byte("apple"))

	v, ok := m.GetString(nil, "a")
	fmt.Println(string(v), ok)
	// Output: apple true
}

func ExampleBytesMap_View() {
	h := newHeap()
	defer h.Close()
	m, _ := container.NewBytesMap(h, 0)
	defer m.Close()
	_ = m.SetString("page", []byte("<html>...</html>"))

	// No copy: the slice is the map's memory, valid only inside f.
	var n int
	found := m.View([]byte("page"), func(v []byte) { n = len(v) })
	fmt.Println(found, n)
	// Output: true 16
}

func ExampleBytesMap_Has() {
	h := newHeap()
	defer h.Close()
	m, _ := container.NewBytesMap(h, 0)
	defer m.Close()
	_ = m.SetString("x", nil) // an empty value is still an entry

	fmt.Println(m.Has([]byte("x")), m.Has([]byte("y")))
	// Output: true false
}

func ExampleBytesMap_Delete() {
	h := newHeap()
	defer h.Close()
	m, _ := container.NewBytesMap(h, 0)
	defer m.Close()
	_ = m.SetString("x", []byte("1"))
	before := h.Stats().HeapObjects

	fmt.Println(m.Delete([]byte("x")), m.Delete([]byte("x")))
	fmt.Println(before - h.Stats().HeapObjects) // the entry is the Heap's again
	// Output:
	// true false
	// 1
}

func ExampleBytesMap_Len() {
	h := newHeap()
	defer h.Close()
	m, _ := container.NewBytesMap(h, 0)
	defer m.Close()
	for i := range 5 {
		_ = m.SetString(fmt.Sprint(i), nil)
	}
	fmt.Println(m.Len())
	// Output: 5
}

func ExampleBytesMap_Range() {
	h := newHeap()
	defer h.Close()
	m, _ := container.NewBytesMap(h, 0)
	defer m.Close()
	for _, s := range []string{"b", "c", "a"} {
		_ = m.SetString(s, []byte(s+s))
	}

	// Range's order is the table's; views are valid only inside f, so
	// keep copies. Deleting must wait until Range returns.
	var keys []string
	m.Range(func(k, v []byte) bool {
		keys = append(keys, string(k)+"="+string(v))
		return true
	})
	slices.Sort(keys)
	fmt.Println(keys)
	// Output: [a=aa b=bb c=cc]
}

func ExampleBytesMap_Close() {
	h := newHeap()
	defer h.Close()
	m, _ := container.NewBytesMap(h, 0)
	_ = m.SetString("x", []byte("1"))

	fmt.Println(m.Close(), h.Stats().HeapObjects)
	err := m.SetString("y", nil)
	fmt.Println(errors.Is(err, container.ErrClosed), errors.Is(m.Close(), container.ErrClosed))
	// Output:
	// <nil> 0
	// true true
}

func ExampleBytesMap_MemStats() {
	h := newHeap()
	defer h.Close()
	m, _ := container.NewBytesMap(h, 0)
	defer m.Close()
	for i := range 100 {
		_ = m.SetString(fmt.Sprintf("%03d", i), []byte("value"))
	}
	st := m.MemStats()
	// Each entry: a 24-byte header, a 3-byte key and a 5-byte value.
	fmt.Println(st.Entries, st.EntryBytes, st.Buckets >= st.Entries, st.MaxMoved <= 16)
	// Output: 100 3200 true true
}

// A point key and a small record value: both plain data, no Go pointers.
type point struct{ X, Y int32 }

type tile struct {
	Height  float32
	Terrain uint8
}

func ExampleNewMap() {
	h := newHeap()
	defer h.Close()

	m, err := container.NewMap[point, tile](h, 0)
	fmt.Println(m.Len(), err)

	_, err = container.NewMap[string, int](h, 0) // a string points into the Go heap
	fmt.Println(errors.Is(err, container.ErrPointerType))
	// Output:
	// 0 <nil>
	// true
}

func ExampleMap() {
	h := newHeap()
	defer h.Close()
	m, _ := container.NewMap[point, tile](h, 0)
	defer m.Close()

	_ = m.Set(point{1, 2}, tile{Height: 3.5, Terrain: 2})
	t, ok := m.Get(point{1, 2})
	fmt.Println(t, ok)
	// Output: {3.5 2} true
}

func ExampleMap_Get() {
	h := newHeap()
	defer h.Close()
	m, _ := container.NewMap[uint64, float64](h, 0)
	defer m.Close()
	_ = m.Set(7, 0.5)

	v, ok := m.Get(7)
	fmt.Println(v, ok)
	v, ok = m.Get(8)
	fmt.Println(v, ok)
	// Output:
	// 0.5 true
	// 0 false
}

func ExampleMap_Set() {
	h := newHeap()
	defer h.Close()
	m, _ := container.NewMap[uint64, uint64](h, 0)
	defer m.Close()

	for i := range uint64(10000) { // grows several times, a bounded step per Set
		_ = m.Set(i, i*i)
	}
	v, _ := m.Get(99)
	fmt.Println(m.Len(), v)
	// Output: 10000 9801
}

func ExampleMap_Delete() {
	h := newHeap()
	defer h.Close()
	m, _ := container.NewMap[uint64, uint64](h, 0)
	defer m.Close()
	_ = m.Set(1, 10)

	fmt.Println(m.Delete(1), m.Delete(1), m.Len())
	// Output: true false 0
}

func ExampleMap_Len() {
	h := newHeap()
	defer h.Close()
	m, _ := container.NewMap[uint32, uint32](h, 0)
	defer m.Close()
	_ = m.Set(1, 1)
	_ = m.Set(1, 2)
	_ = m.Set(2, 2)
	fmt.Println(m.Len())
	// Output: 2
}

func ExampleMap_Range() {
	h := newHeap()
	defer h.Close()
	m, _ := container.NewMap[uint32, uint32](h, 0)
	defer m.Close()
	for i := range uint32(5) {
		_ = m.Set(i, i*10)
	}

	var sum uint32
	m.Range(func(k, v uint32) bool {
		sum += v
		return true
	})
	fmt.Println(sum)
	// Output: 100
}

func ExampleMap_Close() {
	h := newHeap()
	defer h.Close()
	m, _ := container.NewMap[uint32, uint32](h, 0)
	_ = m.Set(1, 1)

	fmt.Println(m.Close(), h.Stats().HeapObjects)
	fmt.Println(errors.Is(m.Set(2, 2), container.ErrClosed))
	// Output:
	// <nil> 0
	// true
}

func ExampleMap_MemStats() {
	h := newHeap()
	defer h.Close()
	m, _ := container.NewMap[uint64, uint64](h, 0)
	defer m.Close()
	for i := range uint64(1000) {
		_ = m.Set(i, i)
	}
	st := m.MemStats()
	// Each entry: a 16-byte header and two 8-byte words.
	fmt.Println(st.Entries, st.EntryBytes, st.Resizes > 0)
	// Output: 1000 32000 true
}

// ExampleBytesMap_Defrag compacts a map after a mass delete: the
// survivors sit scattered over nearly empty spans until Defrag steps move
// them into fuller ones, and the emptied spans go back to the Heap.
func ExampleBytesMap_Defrag() {
	h := newHeap()
	defer h.Close()
	m, err := container.NewBytesMap(h, 0)
	if err != nil {
		panic(err)
	}
	defer m.Close()
	const n = 200000
	for i := range n {
		_ = m.SetString(fmt.Sprintf("key:%06d", i), make([]byte, 40))
	}
	for i := range n {
		if i%10 != 0 {
			m.Delete(fmt.Appendf(nil, "key:%06d", i))
		}
	}
	before := h.Stats()
	// Steps of at most 256 entries (each is what a writer would hold the
	// map's lock for), until two whole sweeps have passed.
	for start := m.MemStats().DefragSweeps; m.MemStats().DefragSweeps < start+2; {
		if _, err := m.Defrag(256); err != nil {
			panic(err)
		}
	}
	after := h.Stats()
	fmt.Println("entries:", m.Len())
	fmt.Println("moved most of them:", m.MemStats().DefragMoved > n/10/2)
	fmt.Println("in use before: over 4x live:", before.HeapInuse > 4*before.HeapAlloc)
	fmt.Println("in use after: under 1.5x live:", float64(after.HeapInuse) < 1.5*float64(after.HeapAlloc))
	// Output:
	// entries: 20000
	// moved most of them: true
	// in use before: over 4x live: true
	// in use after: under 1.5x live: true
}

// ExampleMap_Defrag is BytesMap's for a Map of fixed-size entries.
func ExampleMap_Defrag() {
	h := newHeap()
	defer h.Close()
	m, err := container.NewMap[uint64, [4]uint64](h, 0)
	if err != nil {
		panic(err)
	}
	defer m.Close()
	const n = 200000
	for i := range uint64(n) {
		_ = m.Set(i, [4]uint64{i})
	}
	for i := range uint64(n) {
		if i%10 != 0 {
			m.Delete(i)
		}
	}
	before := h.Stats()
	for start := m.MemStats().DefragSweeps; m.MemStats().DefragSweeps < start+2; {
		if _, err := m.Defrag(256); err != nil {
			panic(err)
		}
	}
	after := h.Stats()
	v, _ := m.Get(420)
	fmt.Println("entries:", m.Len(), "value of 420:", v[0])
	fmt.Println("in use before: over 4x live:", before.HeapInuse > 4*before.HeapAlloc)
	fmt.Println("in use after: under 1.5x live:", float64(after.HeapInuse) < 1.5*float64(after.HeapAlloc))
	// Output:
	// entries: 20000 value of 420: 420
	// in use before: over 4x live: true
	// in use after: under 1.5x live: true
}
