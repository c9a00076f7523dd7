package container

import (
	"fmt"
	"hash/maphash"
	"unsafe"

	"github.com/offheap/offheap/arena"
	"github.com/offheap/offheap/internal/addr"
)

// mapEntry is one entry of a Map: one Heap object.
type mapEntry[K comparable, V any] struct {
	link
	key K
	val V
}

// Map is a hash map of fixed-size keys and values that hold no Go
// pointers (numbers, arrays and structs of them), stored off-heap like
// BytesMap: the Go garbage collector has nothing of it to scan. Keys are
// compared with ==, as in a Go map (so a NaN key is never found again).
//
// The concurrency rule is BytesMap's: writers (Set, Delete, Close) are
// serialised by the caller; readers (Get, Len, Range, MemStats) never
// write to the map and may run together while no writer does. The Heap
// must stay open until the map is closed.
type Map[K comparable, V any] struct {
	c core
}

// NewMap returns an empty map whose memory comes from h, with room for
// sizeHint entries before it first grows. The hint sizes the first table
// only: after mass deletes the table shrinks below it (see the package
// doc). It returns an error wrapping
// ErrPointerType if K or V holds Go pointers (strings, slices, pointers,
// maps, interfaces...), and ErrInvalidArgument for a nil h or a negative
// sizeHint.
func NewMap[K comparable, V any](h *arena.Heap, sizeHint int) (*Map[K, V], error) {
	if err := arena.CheckType[K](); err != nil {
		return nil, fmt.Errorf("container: NewMap key: %w", err)
	}
	if err := arena.CheckType[V](); err != nil {
		return nil, fmt.Errorf("container: NewMap value: %w", err)
	}
	m := &Map[K, V]{}
	if err := m.c.init(h, sizeHint); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Map[K, V]) entryAt(e uintptr) *mapEntry[K, V] { return (*mapEntry[K, V])(addr.Pointer(e)) }

// find returns the link that points to k's entry, or nil.
func (m *Map[K, V]) find(k K, hash uint64) *uintptr {
	for ti := range m.c.tables() {
		p := m.c.tab[ti].slot(hash)
		if p == nil {
			continue
		}
		for ; *p != 0; p = &linkAt(*p).next {
			e := m.entryAt(*p)
			if e.hash == hash && e.key == k {
				return p
			}
		}
	}
	return nil
}

// Get returns the value mapped to k and true, or the zero V and false if
// k is absent (or the map is closed).
func (m *Map[K, V]) Get(k K) (V, bool) {
	if !m.c.closed {
		if p := m.find(k, maphash.Comparable(m.c.seed, k)); p != nil {
			return m.entryAt(*p).val, true
		}
	}
	var zero V
	return zero, false
}

// Set maps k to v. Replacing a value writes over it in place; a new key
// allocates one entry. It returns ErrClosed after Close and the Heap's
// error (arena.ErrOutOfMemory when it is full) wrapped; on error the map
// is unchanged. It panics if called from inside Range on this map.
func (m *Map[K, V]) Set(k K, v V) error {
	if err := m.c.writable("Set"); err != nil {
		return err
	}
	hash := maphash.Comparable(m.c.seed, k)
	if p := m.find(k, hash); p != nil {
		m.entryAt(*p).val = v
		m.c.step()
		return nil
	}
	size := int(unsafe.Sizeof(mapEntry[K, V]{}))
	mem, err := m.c.h.Alloc(size)
	if err != nil {
		return fmt.Errorf("container: Map.Set: entry of %d bytes: %w", size, err)
	}
	ea := uintptr(mem)
	e := m.entryAt(ea)
	e.hash, e.key, e.val = hash, k, v
	slot, err := m.c.insertSlot(hash)
	if err != nil {
		mustFree(m.c.h, ea, "entry")
		return fmt.Errorf("container: Map.Set: bucket table: %w", err)
	}
	e.next = *slot
	*slot = ea
	m.c.count++
	m.c.entryBytes += uint64(size)
	m.c.step()
	return nil
}

// Delete removes k and frees its entry back to the Heap at once; it
// reports whether k was there. It panics if called from inside Range on
// this map.
func (m *Map[K, V]) Delete(k K) bool {
	if m.c.writable("Delete") != nil {
		return false
	}
	p := m.find(k, maphash.Comparable(m.c.seed, k))
	if p == nil {
		m.c.step()
		return false
	}
	ea := *p
	*p = linkAt(ea).next
	m.c.count--
	m.c.entryBytes -= uint64(unsafe.Sizeof(mapEntry[K, V]{}))
	mustFree(m.c.h, ea, "entry")
	m.c.step()
	m.c.maybeShrink()
	return true
}

// Len returns the number of entries (0 after Close).
func (m *Map[K, V]) Len() int { return m.c.count }

// Range calls f for each entry, in no particular order, until f returns
// false. As for BytesMap.Range, f must not change the map: Set, Delete or
// Close on it from inside f panics; reads are allowed.
func (m *Map[K, V]) Range(f func(K, V) bool) {
	if m.c.closed {
		return
	}
	m.c.ranging.Add(1)
	defer m.c.ranging.Add(-1)
	m.c.forEach(func(ea uintptr) bool {
		e := m.entryAt(ea)
		return f(e.key, e.val)
	})
}

// Close frees every entry and both tables back to the Heap. Afterwards
// Set and Close return ErrClosed, Get finds nothing and Len is 0.
func (m *Map[K, V]) Close() error { return m.c.close() }

// MemStats returns the map's entry count and off-heap footprint.
func (m *Map[K, V]) MemStats() MapStats { return m.c.stats() }
