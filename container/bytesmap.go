package container

import (
	"fmt"
	"hash/maphash"
	"unsafe"

	"github.com/offheap/offheap/arena"
	"github.com/offheap/offheap/internal/addr"
)

// bytesEntry is the header of a BytesMap entry: one Heap object holding
// the header, then the key's bytes, then the value's.
type bytesEntry struct {
	link
	klen, vlen uint32
}

const bytesHeader = int(unsafe.Sizeof(bytesEntry{})) // 24

func bytesEntryAt(e uintptr) *bytesEntry { return (*bytesEntry)(addr.Pointer(e)) }

// key and value view the entry's bytes; their capacity is their length,
// so an append by the caller copies instead of writing over the entry.
func (b *bytesEntry) key() []byte {
	p := unsafe.Add(unsafe.Pointer(b), bytesHeader)
	return unsafe.Slice((*byte)(p), b.klen)[:b.klen:b.klen]
}

func (b *bytesEntry) value() []byte {
	p := unsafe.Add(unsafe.Pointer(b), bytesHeader+int(b.klen))
	return unsafe.Slice((*byte)(p), b.vlen)[:b.vlen:b.vlen]
}

func (b *bytesEntry) keyString() string {
	return unsafe.String((*byte)(unsafe.Add(unsafe.Pointer(b), bytesHeader)), b.klen)
}

// BytesMap maps byte-string keys to byte-string values, both copied
// off-heap: its buckets and entries live in an arena.Heap, so the Go
// garbage collector has nothing of it to scan; the BytesMap value itself
// is a small fixed-size struct.
//
// Not safe for concurrent use: callers serialise writers (Set, SetString,
// Delete, Close). The read methods (Get, GetString, View, Has, Len, Range,
// MemStats) never write to the map, so any number of them may run at once
// while no writer does, as under a sync.RWMutex read lock.
//
// The Heap must stay open until the map is closed: the map's memory is the
// Heap's, and closing the Heap first unmaps it under the map.
type BytesMap struct {
	c core
}

// NewBytesMap returns an empty map whose memory comes from h, with room
// for sizeHint entries before it first grows. The hint sizes the first
// table only: after mass deletes the table shrinks below it (see the
// package doc). With sizeHint > 0 the bucket directory is
// allocated now (the buckets themselves as they fill), so a full heap is
// reported here. A nil h or a negative sizeHint returns
// ErrInvalidArgument.
func NewBytesMap(h *arena.Heap, sizeHint int) (*BytesMap, error) {
	m := &BytesMap{}
	if err := m.c.init(h, sizeHint); err != nil {
		return nil, err
	}
	return m, nil
}

// find returns the link that points to key's entry (a bucket or the
// previous entry's next field), or nil.
func (m *BytesMap) find(key []byte, hash uint64) *uintptr {
	for ti := range m.c.tables() {
		p := m.c.tab[ti].slot(hash)
		if p == nil {
			continue
		}
		for ; *p != 0; p = &linkAt(*p).next {
			e := bytesEntryAt(*p)
			if e.hash == hash && string(e.key()) == string(key) {
				return p
			}
		}
	}
	return nil
}

// findString is find for a string key.
func (m *BytesMap) findString(key string, hash uint64) *uintptr {
	for ti := range m.c.tables() {
		p := m.c.tab[ti].slot(hash)
		if p == nil {
			continue
		}
		for ; *p != 0; p = &linkAt(*p).next {
			e := bytesEntryAt(*p)
			if e.hash == hash && e.keyString() == key {
				return p
			}
		}
	}
	return nil
}

// Set maps key to a copy of value, copying key too. It returns
// ErrTooLarge for a key or value longer than MaxLen, ErrClosed after
// Close, and the Heap's error (arena.ErrOutOfMemory when it is full)
// wrapped; on error the map is unchanged. Replacing a value writes over
// it in place when the new entry fits in the old one's memory and fills at
// least half of it (see inPlaceMinFill); otherwise the entry is
// reallocated and the old one freed. Set panics if called from inside
// Range on this map.
func (m *BytesMap) Set(key, value []byte) error {
	if err := m.c.writable("Set"); err != nil {
		return err
	}
	if err := checkLens(len(key), len(value)); err != nil {
		return err
	}
	hash := maphash.Bytes(m.c.seed, key)
	return m.set(unsafe.String(unsafe.SliceData(key), len(key)), hash, value, m.find(key, hash))
}

// SetString is Set with a string key.
func (m *BytesMap) SetString(key string, value []byte) error {
	if err := m.c.writable("SetString"); err != nil {
		return err
	}
	if err := checkLens(len(key), len(value)); err != nil {
		return err
	}
	hash := maphash.String(m.c.seed, key)
	return m.set(key, hash, value, m.findString(key, hash))
}

// checkLens refuses a key or value too long for an entry's header, before
// any of it is read (hashed or compared).
func checkLens(klen, vlen int) error {
	if uint64(klen) > MaxLen || uint64(vlen) > MaxLen {
		return fmt.Errorf("%w: key %d bytes, value %d bytes (at most %d each)", ErrTooLarge, klen, vlen, uint64(MaxLen))
	}
	return nil
}

// set stores key → value, where p is the link to key's entry or nil
// (key only views the caller's bytes for the copy). The resize step runs
// last: it relinks entries, so p is used before it.
func (m *BytesMap) set(key string, hash uint64, value []byte, p *uintptr) error {
	size := bytesHeader + len(key) + len(value)
	if p != nil && m.fitsInPlace(*p, size) {
		old := bytesEntryAt(*p)
		m.c.entryBytes += uint64(size) - uint64(bytesHeader+int(old.klen)+int(old.vlen))
		old.vlen = uint32(len(value))
		copy(old.value(), value)
		m.c.step()
		return nil
	}
	mem, err := m.c.h.Alloc(size)
	if err != nil {
		return fmt.Errorf("container: Set of a %d-byte key and %d-byte value: %w", len(key), len(value), err)
	}
	ea := uintptr(mem)
	e := bytesEntryAt(ea)
	e.hash = hash
	e.klen, e.vlen = uint32(len(key)), uint32(len(value))
	copy(unsafe.Slice((*byte)(unsafe.Add(mem, bytesHeader)), len(key)), key)
	copy(e.value(), value)
	if p != nil { // replace the old entry where it stands in its chain
		old := *p
		oe := bytesEntryAt(old)
		e.next = oe.next
		*p = ea
		m.c.entryBytes += uint64(size) - uint64(bytesHeader+int(oe.klen)+int(oe.vlen))
		mustFree(m.c.h, old, "entry")
		m.c.step()
		return nil
	}
	slot, err := m.c.insertSlot(hash)
	if err != nil {
		mustFree(m.c.h, ea, "entry")
		return fmt.Errorf("container: Set: bucket table: %w", err)
	}
	e.next = *slot
	*slot = ea
	m.c.count++
	m.c.entryBytes += uint64(size)
	m.c.step()
	return nil
}

// inPlaceMinFill is the least share of an entry's memory (its
// UsableSize) a replacement value must fill for Set to write it over the
// old one instead of moving the entry: 1/2. A cache that overwrites values
// with ones of another size (a SET of 256 bytes over a 300 to 512-byte
// value) would otherwise free one object and allocate another of a new
// size class for every write, leaving the old class's spans holey and
// in-use memory above the data until the holes refill or the defragger
// moves the survivors out (container's Defrag); kept in place, the entry
// costs nothing to replace and at most its own size more than a new one.
// The bound keeps that waste at most half of any entry's memory: a value
// that shrinks further moves to a fitting size class, so memory follows
// the data down.
const inPlaceMinFill = 2

// fitsInPlace reports whether an entry of size bytes fits in the memory of
// the live entry at e and fills at least 1/inPlaceMinFill of it.
func (m *BytesMap) fitsInPlace(e uintptr, size int) bool {
	old := bytesEntryAt(e)
	if size == bytesHeader+int(old.klen)+int(old.vlen) {
		return true // the same size: always in place, no lookup needed
	}
	usable, err := m.c.h.UsableSize(addr.Pointer(e))
	if err != nil {
		// Only a Heap closed under the map (or corrupted) refuses the
		// map's own live entry: the move path reports or panics on it.
		return false
	}
	return size <= usable && size*inPlaceMinFill >= usable
}

// Get appends the value mapped to key to dst and returns the result and
// true, or dst and false if key is absent (or the map is closed).
func (m *BytesMap) Get(dst, key []byte) ([]byte, bool) {
	if m.c.closed {
		return dst, false
	}
	p := m.find(key, maphash.Bytes(m.c.seed, key))
	if p == nil {
		return dst, false
	}
	return append(dst, bytesEntryAt(*p).value()...), true
}

// GetString is Get with a string key.
func (m *BytesMap) GetString(dst []byte, key string) ([]byte, bool) {
	if m.c.closed {
		return dst, false
	}
	p := m.findString(key, maphash.String(m.c.seed, key))
	if p == nil {
		return dst, false
	}
	return append(dst, bytesEntryAt(*p).value()...), true
}

// View calls f with the value mapped to key, in place, without copying,
// and returns true; it returns false without calling f if key is absent.
// The slice is valid only inside f: it views off-heap memory that a later
// Set or Delete of the key frees. f must not call Set, Delete or Close on
// the map (View holds no lock; the entry would be freed under f).
func (m *BytesMap) View(key []byte, f func(value []byte)) bool {
	if m.c.closed {
		return false
	}
	p := m.find(key, maphash.Bytes(m.c.seed, key))
	if p == nil {
		return false
	}
	f(bytesEntryAt(*p).value())
	return true
}

// Has reports whether key is in the map.
func (m *BytesMap) Has(key []byte) bool {
	return !m.c.closed && m.find(key, maphash.Bytes(m.c.seed, key)) != nil
}

// Delete removes key and frees its entry back to the Heap at once; it
// reports whether key was there. It panics if called from inside Range
// on this map.
func (m *BytesMap) Delete(key []byte) bool {
	if m.c.writable("Delete") != nil {
		return false
	}
	p := m.find(key, maphash.Bytes(m.c.seed, key))
	if p == nil {
		m.c.step()
		return false
	}
	ea := *p
	e := bytesEntryAt(ea)
	*p = e.next
	m.c.count--
	m.c.entryBytes -= uint64(bytesHeader + int(e.klen) + int(e.vlen))
	mustFree(m.c.h, ea, "entry")
	m.c.step()
	m.c.maybeShrink()
	return true
}

// Len returns the number of entries (0 after Close).
func (m *BytesMap) Len() int { return m.c.count }

// Range calls f for each entry, in no particular order, until f returns
// false. key and value view the entry in place and are valid only inside
// f. f must not change the map: Set, SetString, Delete or Close on it from
// inside f panics (they would free or move the entries Range is walking);
// collect the keys and change the map after Range returns. Reads (Get,
// View, a nested Range) are allowed.
func (m *BytesMap) Range(f func(key, value []byte) bool) {
	if m.c.closed {
		return
	}
	m.c.ranging.Add(1)
	defer m.c.ranging.Add(-1)
	m.c.forEach(func(ea uintptr) bool {
		e := bytesEntryAt(ea)
		return f(e.key(), e.value())
	})
}

// Close frees every entry and both tables back to the Heap. Afterwards
// Set and SetString return ErrClosed, Close returns ErrClosed, lookups
// find nothing and Len is 0.
func (m *BytesMap) Close() error { return m.c.close() }

// MemStats returns the map's entry count and off-heap footprint.
func (m *BytesMap) MemStats() MapStats { return m.c.stats() }
