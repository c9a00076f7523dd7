package arena

import (
	"errors"
	"slices"
	"unsafe"
)

// Typed allocations and regions in FuzzHeap (fuzz_test.go).

// fuzzRecord is a pointer-free record for typed allocation.
type fuzzRecord struct {
	A, B uint64
	C    [5]uint32
}

// fuzzBadRecord holds a Go pointer: typed allocation must refuse it.
type fuzzBadRecord struct {
	N uint64
	S []byte
}

// typed allocates through the typed API: kind picks New, MakeSlice of
// uint32 (length n), or a refused pointer type.
func (m *fuzzModel) typed(w fuzzWho, kind byte, n int) {
	m.t.Helper()
	a := m.allocator(w)
	switch kind % 3 {
	case 0:
		p, err := New[fuzzRecord](a)
		m.record(w, int(unsafe.Sizeof(fuzzRecord{})), unsafe.Pointer(p), err)
	case 1:
		n %= 20000 // up to ~78 KiB: small and large
		s, err := MakeSlice[uint32](a, n/2, n)
		if n == 0 {
			if err != nil || s == nil || len(s) != 0 {
				m.fatalf("MakeSlice(0, 0) = %v, %v", s, err)
			}
			return // no memory, nothing to free
		}
		if err == nil && (len(s) != n/2 || cap(s) != n) {
			m.fatalf("MakeSlice(%d, %d): len %d cap %d", n/2, n, len(s), cap(s))
		}
		m.record(w, n*4, unsafe.Pointer(unsafe.SliceData(s)), err)
	case 2:
		before := m.h.Stats()
		if _, err := New[fuzzBadRecord](a); !errors.Is(err, ErrPointerType) {
			m.fatalf("New of a pointer type: %v, want ErrPointerType", err)
		}
		if d := quickDiff(before, m.h.Stats()); d != "" {
			m.fatalf("refused New changed Stats:\n%s", d)
		}
	}
}

// regionAlloc allocates from the current region, making one if needed.
func (m *fuzzModel) regionAlloc(size int) {
	m.t.Helper()
	if m.region == nil {
		m.region = m.h.NewRegion()
	}
	p, err := m.region.Alloc(size)
	if err != nil {
		st := m.h.Stats()
		if errors.Is(err, ErrOutOfMemory) && st.HeapInuse+uint64(size)+16<<20 > st.Reserved {
			return
		}
		m.fatalf("region alloc %d: %v", size, err)
	}
	addr := uintptr(p)
	if addr%regionAlign != 0 {
		m.fatalf("region alloc %d: %#x misaligned", size, addr)
	}
	if k := firstByteNot(p, size, 0); k >= 0 {
		m.fatalf("region alloc %d at %#x: byte %d not zero", size, addr, k)
	}
	if o := m.overlap(addr, uint64(max(size, 1))); o != nil {
		m.fatalf("region alloc [%#x, +%d) overlaps heap object %#x", addr, size, o.addr)
	}
	m.nextFill++
	if m.nextFill == 0 {
		m.nextFill = 1
	}
	fillBytes(p, size, m.nextFill)
	m.regionObjs = append(m.regionObjs, &fuzzObj{addr: addr, size: size, fill: m.nextFill, by: -2})
	// Region memory is not the heap's to free object by object.
	if err := m.h.Free(p); !errors.Is(err, ErrInvalidPointer) {
		m.fatalf("Heap.Free of region memory %#x: %v, want ErrInvalidPointer", addr, err)
	}
}

// regionFree frees the current region and checks it refuses further use.
func (m *fuzzModel) regionFree() {
	m.t.Helper()
	if m.region == nil {
		return
	}
	m.checkRegion(nil)
	if err := m.region.Free(); err != nil {
		m.fatalf("Region.Free: %v", err)
	}
	if _, err := m.region.Alloc(8); !errors.Is(err, ErrClosed) {
		m.fatalf("Alloc after Region.Free: %v, want ErrClosed", err)
	}
	if err := m.region.Free(); !errors.Is(err, ErrClosed) {
		m.fatalf("second Region.Free: %v, want ErrClosed", err)
	}
	m.region, m.regionObjs = nil, nil
	if st := m.h.Stats(); st.RegionInuse != 0 || st.Regions != 0 {
		m.fatalf("after Region.Free: RegionInuse %d, Regions %d", st.RegionInuse, st.Regions)
	}
}

// checkRegion checks region objects hold their fill and overlap nothing
// (heapSorted: the live heap objects by address, or nil).
func (m *fuzzModel) checkRegion(heapSorted []*fuzzObj) {
	m.t.Helper()
	objs := slices.Clone(m.regionObjs)
	slices.SortFunc(objs, func(a, b *fuzzObj) int { return cmpAddr(a.addr, b.addr) })
	for i, o := range objs {
		if k := firstByteNot(addrPointer(o.addr), o.size, o.fill); k >= 0 {
			m.fatalf("region object %#x (%d bytes) byte %d changed", o.addr, o.size, k)
		}
		if i > 0 && objs[i-1].addr+uintptr(max(objs[i-1].size, 1)) > o.addr {
			m.fatalf("region objects overlap at %#x", o.addr)
		}
		if heapSorted != nil {
			if h := m.overlap(o.addr, uint64(max(o.size, 1))); h != nil {
				m.fatalf("region object %#x overlaps heap object %#x", o.addr, h.addr)
			}
		}
	}
	if m.region != nil {
		rs := m.region.Stats()
		if st := m.h.Stats(); st.RegionInuse != rs.Held || rs.Used > rs.Held {
			m.fatalf("region stats %+v, heap RegionInuse %d", rs, st.RegionInuse)
		}
	}
}
