package arena

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"

	"github.com/offheap/offheap/pages"
	"github.com/offheap/offheap/sizeclasses"
)

// FuzzHeap drives a Heap's public API from the fuzzer's bytes and checks
// every step against a model of the live objects: where each one is, how
// big, which byte it was filled with and who allocated it.
//
// Each input is a sequence of operations (see the op constants); bytes run
// out as zeros, and at most fuzzMaxOps operations run. Every step checks
// the Stats identities and the model's counts; failed operations must
// leave Stats untouched; every 16 steps, at opCheck and at the end of
// every input, checkAll also checks every live object's contents, that no
// two overlap, and Verify.
func FuzzHeap(f *testing.F) {
	for _, seed := range fuzzSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m := newFuzzModel(t)
		r := &fuzzReader{data: data}
		for n := 0; n < fuzzMaxOps && r.more(); n++ {
			m.step(r)
			m.checkStats()
			if n%16 == 15 {
				m.checkAll()
			}
		}
		m.checkAll()
		m.finish()
	})
}

const (
	fuzzMaxOps    = 200
	fuzzReserve   = 128 << 20
	fuzzNumCaches = 3
	fuzzFreedKeep = 64 // freed addresses remembered for double frees
)

// Operations. The first byte of each step picks one, modulo opCount.
const (
	opAlloc = iota // who, size selector, 2 size bytes
	opAlloc2
	opAlloc3
	opFree       // 2 index bytes, who
	opFree2      // same
	opFreeTwice  // free, then free again through someone else
	opStaleFree  // free an address freed earlier that no live object starts at
	opInterior   // free a pointer inside a live object
	opCloseCache // cache index, reopen flag
	opScavenge   //
	opCheck      // contents, overlap, Verify
	opForeign    // free a pointer that was never this heap's
	opBatchAlloc // who, count, size selector, 2 size bytes
	opBatchFree  // count, who, index bytes per object
	opTyped      // who, kind, 2 length bytes (fuzz_typed_test.go)
	opRegionAlloc
	opRegionFree
	opCount
)

// fuzzReader hands out the input's bytes, then zeros.
type fuzzReader struct {
	data []byte
	off  int
}

func (r *fuzzReader) more() bool { return r.off < len(r.data) }

func (r *fuzzReader) byte() byte {
	if r.off >= len(r.data) {
		return 0
	}
	b := r.data[r.off]
	r.off++
	return b
}

func (r *fuzzReader) u16() int { return int(r.byte()) | int(r.byte())<<8 }

// size decodes a selector and two bytes into an allocation size: mostly
// small, some medium, now and then large (up to about 300 KiB).
func (r *fuzzReader) size() int {
	sel, v := r.byte(), r.u16()
	switch sel % 8 {
	case 0, 1, 2:
		return v % 257
	case 3, 4:
		return v % 4097
	case 5:
		return v % (sizeclasses.MaxSmallSize + 1)
	case 6:
		// Exactly a class size, or one byte more.
		cl := uint8(1 + v%(sizeclasses.NumClasses-1))
		return int(sizeclasses.Size(cl)) + int(v>>8)%2
	default:
		return sizeclasses.MaxSmallSize + 1 + v*4
	}
}

// fuzzWho is the allocator or freer: -1 the Heap, 0..fuzzNumCaches-1 a Cache.
type fuzzWho int

func (r *fuzzReader) who() fuzzWho {
	w := fuzzWho(r.byte()%(fuzzNumCaches+1)) - 1
	return w
}

type fuzzObj struct {
	addr uintptr
	size int
	fill byte
	by   fuzzWho
	idx  int // position in fuzzModel.order
}

type fuzzModel struct {
	t      *testing.T
	h      *Heap
	caches [fuzzNumCaches]*Cache
	closed [fuzzNumCaches]bool // caches[i] was closed and not replaced yet

	live  map[uintptr]*fuzzObj
	order []*fuzzObj // live objects in a deterministic order
	freed []uintptr  // recently freed addresses, oldest first

	nextFill       byte
	mallocs, frees uint64
	alloc          uint64 // sum of class sizes of live objects
	large          uint64 // live large objects
	largeBytes     uint64
	cls            [sizeclasses.NumClasses]fuzzClassCount

	region     *Region    // the current region, nil before the first region op
	regionObjs []*fuzzObj // its objects
}

// fuzzClassCount is the model's view of a ClassStats entry.
type fuzzClassCount struct{ Objects, Mallocs, Frees uint64 }

func newFuzzModel(t *testing.T) *fuzzModel {
	h := newTestHeap(t, quiet(Config{Reserve: fuzzReserve}))
	m := &fuzzModel{t: t, h: h, live: map[uintptr]*fuzzObj{}}
	for i := range m.caches {
		m.caches[i] = h.NewCache()
	}
	return m
}

func (m *fuzzModel) fatalf(format string, args ...any) {
	m.t.Helper()
	m.t.Fatalf(format, args...)
}

func (m *fuzzModel) step(r *fuzzReader) {
	switch op := r.byte() % opCount; op {
	case opAlloc, opAlloc2, opAlloc3:
		m.alloc1(r.who(), r.size())
	case opFree, opFree2:
		if o := m.pick(r.u16()); o != nil {
			m.free(o, r.who())
		}
	case opFreeTwice:
		o := m.pick(r.u16())
		if o == nil {
			return
		}
		addr := o.addr
		m.free(o, r.who())
		// The slot is free; or, if the span went back with its last object,
		// the address is a freed span's start or lies in free pages.
		m.badFree(r.who(), addrPointer(addr), ErrDoubleFree, ErrInvalidPointer)
	case opStaleFree:
		if len(m.freed) == 0 {
			return
		}
		addr := m.freed[r.u16()%len(m.freed)]
		if m.live[addr] != nil {
			return // handed out again: freeing it is legitimate
		}
		m.badFree(r.who(), addrPointer(addr), ErrDoubleFree, ErrInvalidPointer)
	case opInterior:
		o := m.pick(r.u16())
		if o == nil {
			return
		}
		extent := objExtent(o.size)
		off := 1 + uintptr(r.u16())%uintptr(extent-1)
		if o.size > sizeclasses.MaxSmallSize && r.byte()%2 == 0 {
			// A page boundary inside the large object.
			off = uintptr(1+r.byte()%uint8(extent/pages.PageSize-1)) * pages.PageSize
		}
		m.badFree(r.who(), unsafe.Add(addrPointer(o.addr), off), ErrInvalidPointer)
	case opCloseCache:
		i := int(r.byte()) % fuzzNumCaches
		reopen := r.byte()%2 == 0
		m.closeCache(i, reopen)
	case opScavenge:
		before := m.h.Stats()
		got := m.h.Scavenge()
		after := m.h.Stats()
		if after.ScavengeReleased-before.ScavengeReleased != got {
			m.fatalf("Scavenge returned %d, ScavengeReleased grew by %d", got, after.ScavengeReleased-before.ScavengeReleased)
		}
		if got > before.HeapIdle-before.HeapReleased {
			m.fatalf("Scavenge released %d bytes, only %d were idle and unreleased", got, before.HeapIdle-before.HeapReleased)
		}
		if after.HeapReleased != before.HeapReleased+got {
			m.fatalf("HeapReleased %d -> %d after releasing %d", before.HeapReleased, after.HeapReleased, got)
		}
		if again := m.h.Scavenge(); again != 0 {
			m.fatalf("second Scavenge released %d more bytes", again)
		}
	case opCheck:
		m.checkAll()
	case opForeign:
		var local [16]byte
		goHeap := new([64]byte)
		var p unsafe.Pointer
		switch r.byte() % 4 {
		case 0:
			p = nil
		case 1:
			p = unsafe.Pointer(&local[8])
		case 2:
			p = unsafe.Pointer(goHeap)
		default:
			// Never-grown space at the top of the reservation.
			a := m.h.limit - pages.PageSize*uintptr(1+r.byte())
			if a < m.h.growNext {
				return
			}
			p = addrPointer(a)
		}
		m.badFree(r.who(), p, ErrInvalidPointer)
	case opBatchAlloc:
		w, n, size := r.who(), int(r.byte())%64, r.size()
		if size > sizeclasses.MaxSmallSize {
			n %= 4
		}
		for range n {
			m.alloc1(w, size)
		}
	case opTyped:
		m.typed(r.who(), r.byte(), r.u16())
	case opRegionAlloc:
		m.regionAlloc(r.size())
	case opRegionFree:
		m.regionFree()
	case opBatchFree:
		n := int(r.byte()) % 64
		w := r.who()
		for range n {
			if o := m.pick(int(r.byte())); o != nil {
				m.free(o, w)
			}
		}
	}
}

// pick returns live object i modulo their number, or nil.
func (m *fuzzModel) pick(i int) *fuzzObj {
	if len(m.order) == 0 {
		return nil
	}
	return m.order[i%len(m.order)]
}

// allocator returns w's allocator. A cache that was closed must refuse
// everything with ErrClosed, changing nothing; it is then replaced by a
// fresh one.
func (m *fuzzModel) allocator(w fuzzWho) allocFreer {
	m.t.Helper()
	if w < 0 {
		return m.h
	}
	if m.closed[w] {
		m.checkClosed(int(w))
		m.caches[w] = m.h.NewCache()
		m.closed[w] = false
	}
	return m.caches[w]
}

func (m *fuzzModel) alloc1(w fuzzWho, size int) {
	m.t.Helper()
	a := m.allocator(w)
	p, err := a.Alloc(size)
	m.record(w, size, p, err)
}

// record checks a fresh allocation of size bytes by w and adds it to the
// model.
func (m *fuzzModel) record(w fuzzWho, size int, p unsafe.Pointer, err error) {
	m.t.Helper()
	if err != nil {
		st := m.h.Stats()
		if errors.Is(err, ErrOutOfMemory) && st.HeapInuse+objExtent(size)+16<<20 > st.Reserved {
			return // the reservation is nearly full: fair enough
		}
		m.fatalf("alloc %d by %d: %v (stats: %s)", size, w, err, statsLine(st))
	}
	addr := uintptr(p)
	if addr%wantAlign(size) != 0 {
		m.fatalf("alloc %d by %d: %#x not aligned to %d", size, w, addr, wantAlign(size))
	}
	extent := objExtent(size)
	if addr < m.h.base || addr+uintptr(extent) > m.h.growNext {
		m.fatalf("alloc %d by %d: [%#x, +%d) outside the grown heap [%#x, %#x)", size, w, addr, extent, m.h.base, m.h.growNext)
	}
	if o := m.overlap(addr, extent); o != nil {
		m.fatalf("alloc %d by %d: [%#x, +%d) overlaps live object [%#x, +%d) of %d bytes by %d",
			size, w, addr, extent, o.addr, objExtent(o.size), o.size, o.by)
	}
	if k := firstByteNot(p, size, 0); k >= 0 {
		m.fatalf("alloc %d by %d at %#x: byte %d is %#x, not zero", size, w, addr, k, bytesAt(p, size)[k])
	}
	m.nextFill++
	if m.nextFill == 0 {
		m.nextFill = 1
	}
	fillBytes(p, size, m.nextFill)
	o := &fuzzObj{addr: addr, size: size, fill: m.nextFill, by: w, idx: len(m.order)}
	m.live[addr] = o
	m.order = append(m.order, o)
	m.mallocs++
	m.alloc += extent
	if cl := objClass(size); cl != 0 {
		m.cls[cl].Objects++
		m.cls[cl].Mallocs++
	} else {
		m.large++
		m.largeBytes += extent
	}
}

// overlap returns a live object sharing a byte with [addr, addr+n), or nil.
func (m *fuzzModel) overlap(addr uintptr, n uint64) *fuzzObj {
	for _, o := range m.order {
		if addr < o.addr+uintptr(objExtent(o.size)) && o.addr < addr+uintptr(n) {
			return o
		}
	}
	return nil
}

func (m *fuzzModel) free(o *fuzzObj, w fuzzWho) {
	m.t.Helper()
	p := addrPointer(o.addr)
	if k := firstByteNot(p, o.size, o.fill); k >= 0 {
		m.fatalf("object %#x (%d bytes by %d) byte %d is %#x, want %#x", o.addr, o.size, o.by, k, bytesAt(p, o.size)[k], o.fill)
	}
	if err := m.allocator(w).Free(p); err != nil {
		m.fatalf("free %#x (%d bytes by %d) by %d: %v", o.addr, o.size, o.by, w, err)
	}
	last := m.order[len(m.order)-1]
	m.order[o.idx] = last
	last.idx = o.idx
	m.order = m.order[:len(m.order)-1]
	delete(m.live, o.addr)
	if len(m.freed) == fuzzFreedKeep {
		m.freed = m.freed[1:]
	}
	m.freed = append(m.freed, o.addr)
	m.frees++
	m.alloc -= objExtent(o.size)
	if cl := objClass(o.size); cl != 0 {
		m.cls[cl].Objects--
		m.cls[cl].Frees++
	} else {
		m.large--
		m.largeBytes -= objExtent(o.size)
	}
}

// badFree frees p through w, expecting one of want and no change at all.
func (m *fuzzModel) badFree(w fuzzWho, p unsafe.Pointer, want ...error) {
	m.t.Helper()
	before := m.h.Stats()
	err := m.allocator(w).Free(p)
	ok := false
	for _, e := range want {
		ok = ok || errors.Is(err, e)
	}
	if !ok {
		m.fatalf("free of %p by %d: got %v, want one of %v", p, w, err, want)
	}
	if d := quickDiff(before, m.h.Stats()); d != "" {
		m.fatalf("failed free of %p (%v) changed Stats (-before +after):\n%s", p, err, d)
	}
}

func (m *fuzzModel) closeCache(i int, reopen bool) {
	m.t.Helper()
	if m.closed[i] {
		m.allocator(fuzzWho(i))
	}
	if err := m.caches[i].Close(); err != nil {
		m.fatalf("closing cache %d: %v", i, err)
	}
	m.closed[i] = true
	if reopen {
		m.allocator(fuzzWho(i))
	}
}

// checkClosed checks that closed cache i refuses everything and changes
// nothing.
func (m *fuzzModel) checkClosed(i int) {
	m.t.Helper()
	c := m.caches[i]
	before := m.h.Stats()
	if err := c.Close(); !errors.Is(err, ErrClosed) {
		m.fatalf("second Close of cache %d: %v, want ErrClosed", i, err)
	}
	if p, err := c.Alloc(8); !errors.Is(err, ErrClosed) || p != nil {
		m.fatalf("Alloc on closed cache %d: %p, %v; want nil, ErrClosed", i, p, err)
	}
	if p, err := c.Alloc(100 << 10); !errors.Is(err, ErrClosed) || p != nil {
		m.fatalf("large Alloc on closed cache %d: %p, %v; want nil, ErrClosed", i, p, err)
	}
	if len(m.order) > 0 {
		if err := c.Free(addrPointer(m.order[0].addr)); !errors.Is(err, ErrClosed) {
			m.fatalf("Free on closed cache %d: %v, want ErrClosed", i, err)
		}
	}
	if d := quickDiff(before, m.h.Stats()); d != "" {
		m.fatalf("using closed cache %d changed Stats (-before +after):\n%s", i, d)
	}
}

// checkStats compares Stats with the model. Cheap: runs after every step.
func (m *fuzzModel) checkStats() {
	m.t.Helper()
	st := m.h.Stats()
	if err := statsIdentities(st); err != nil {
		m.fatalf("Stats identities: %v\n%+v", err, statsLine(st))
	}
	type totals struct {
		Reserved, HeapObjects, HeapAlloc, Mallocs, Frees, LargeObjects, LargeAlloc uint64
	}
	want := totals{fuzzReserve, uint64(len(m.live)), m.alloc, m.mallocs, m.frees, m.large, m.largeBytes}
	got := totals{st.Reserved, st.HeapObjects, st.HeapAlloc, st.Mallocs, st.Frees, st.LargeObjects, st.LargeAlloc}
	if d := quickDiff(want, got); d != "" {
		m.fatalf("Stats totals differ from the model (-model +Stats):\n%s", d)
	}
	gotCls := make([]fuzzClassCount, len(st.Classes))
	for i, c := range st.Classes {
		gotCls[i] = fuzzClassCount{c.Objects, c.Mallocs, c.Frees}
	}
	if d := quickDiff(m.cls[:], gotCls); d != "" {
		m.fatalf("per-class Stats differ from the model (-model +Stats):\n%s", d)
	}
}

// checkAll checks every live object's contents, that no two overlap, and
// Verify.
func (m *fuzzModel) checkAll() {
	m.t.Helper()
	sorted := slices.Clone(m.order)
	slices.SortFunc(sorted, func(a, b *fuzzObj) int { return cmpAddr(a.addr, b.addr) })
	for i, o := range sorted {
		p := addrPointer(o.addr)
		if k := firstByteNot(p, o.size, o.fill); k >= 0 {
			m.fatalf("object %#x (%d bytes by %d) byte %d is %#x, want %#x", o.addr, o.size, o.by, k, bytesAt(p, o.size)[k], o.fill)
		}
		if i > 0 {
			prev := sorted[i-1]
			if prev.addr+uintptr(objExtent(prev.size)) > o.addr {
				m.fatalf("objects overlap: [%#x, +%d) and [%#x, +%d)", prev.addr, objExtent(prev.size), o.addr, objExtent(o.size))
			}
		}
	}
	m.checkRegion(sorted)
	if err := m.h.Verify(); err != nil {
		m.fatalf("Verify: %v", err)
	}
}

// finish frees everything, closes the caches and the heap, and checks that
// nothing is left.
func (m *fuzzModel) finish() {
	m.t.Helper()
	for len(m.order) > 0 {
		o := m.order[len(m.order)-1]
		m.free(o, fuzzWho(o.idx%(fuzzNumCaches+1))-1)
	}
	for i := range m.caches {
		m.closeCache(i, false)
	}
	m.regionFree()
	m.checkStats()
	st := m.h.Stats()
	if st.HeapObjects != 0 || st.HeapAlloc != 0 || st.Mallocs != st.Frees {
		m.fatalf("after freeing everything: %+v", statsLine(st))
	}
	if err := m.h.Verify(); err != nil {
		m.fatalf("Verify: %v", err)
	}
	m.h.Scavenge()
	if err := m.h.Close(); err != nil {
		m.fatalf("Close: %v", err)
	}
	if err := m.h.Close(); !errors.Is(err, ErrClosed) {
		m.fatalf("second Close: %v, want ErrClosed", err)
	}
}

// quickDiff is cmp.Diff with a fast path for equal values: cmp.Diff on
// every step would take most of a fuzz exec's time.
func quickDiff(x, y any) string {
	if reflect.DeepEqual(x, y) {
		return ""
	}
	return cmp.Diff(x, y)
}

func cmpAddr(a, b uintptr) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// statsLine formats Stats without the per-class table.
func statsLine(st Stats) string {
	st.Classes = nil
	return fmt.Sprintf("%+v", st)
}

// fuzzSeeds are the corpus's starting points. They are also checked in
// under testdata/fuzz/FuzzHeap; go test -run TestWriteFuzzSeeds
// -write-fuzz-seeds rewrites those files from here.
func fuzzSeeds() [][]byte {
	var seeds [][]byte
	b := func(ops ...[]byte) []byte { return slices.Concat(ops...) }
	alloc := func(w, sel byte, v int) []byte { return []byte{opAlloc, w, sel, byte(v), byte(v >> 8)} }
	batch := func(w, n, sel byte, v int) []byte {
		return []byte{opBatchAlloc, w, n, sel, byte(v), byte(v >> 8)}
	}
	free := func(i int, w byte) []byte { return []byte{opFree, byte(i), byte(i >> 8), w} }
	check := []byte{opCheck}

	// 1. Small objects from every allocFreer, freed crosswise.
	var s []byte
	for i := range 24 {
		s = append(s, alloc(byte(i%4), 0, i*37)...)
	}
	for i := range 24 {
		s = append(s, free(i*7, byte(i+1))...)
	}
	seeds = append(seeds, b(s, check))

	// 2. Fill spans of a few classes through caches, free through the heap.
	seeds = append(seeds, b(batch(1, 60, 0, 48), batch(2, 63, 3, 1000), batch(0, 40, 6, 20), check,
		[]byte{opBatchFree, 50, 0}, make([]byte, 50), check,
		[]byte{opBatchFree, 63, 3}, []byte("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ+"), check))

	// 3. Large objects, interior pointers, double frees, scavenging.
	seeds = append(seeds, b(alloc(0, 7, 100), alloc(3, 7, 60000), alloc(1, 7, 2), check,
		[]byte{opInterior, 1, 0, 1, 0, 0}, []byte{opInterior, 0, 0, 2, 9, 0, 1},
		[]byte{opFreeTwice, 0, 0, 2, 0}, []byte{opScavenge}, []byte{opStaleFree, 0, 0, 3},
		alloc(2, 7, 100), []byte{opFreeTwice, 1, 0, 1, 3}, []byte{opScavenge}, check))

	// 4. Close and reopen caches holding live objects; free them elsewhere.
	seeds = append(seeds, b(batch(1, 30, 0, 64), batch(2, 30, 4, 3000), batch(3, 10, 5, 20000),
		[]byte{opCloseCache, 1, 0}, free(3, 2), free(5, 0), []byte{opCloseCache, 2, 1}, check,
		batch(1, 20, 0, 64), []byte{opBatchFree, 63, 1}, make([]byte, 63), []byte{opCloseCache, 0, 0}, check))

	// 5. Bad frees of every kind on a busy heap.
	seeds = append(seeds, b(batch(0, 10, 0, 16), alloc(3, 7, 5), free(2, 0), free(3, 3),
		[]byte{opStaleFree, 0, 0, 1}, []byte{opStaleFree, 1, 0, 0},
		[]byte{opForeign, 0, 0}, []byte{opForeign, 1, 1}, []byte{opForeign, 2, 2}, []byte{opForeign, 3, 3, 5},
		[]byte{opInterior, 4, 0, 8, 0, 0}, check))

	// 6. Alloc(0), one-byte-over-class sizes, exact class sizes.
	s = nil
	for cl := range 40 {
		s = append(s, alloc(byte(cl%4), 6, cl*257+cl%2*256)...)
		s = append(s, alloc(byte(cl%4), 0, 0)...)
	}
	seeds = append(seeds, b(s, check, []byte{opBatchFree, 60, 2}, make([]byte, 60), check))

	// 7. Churn: allocate and free the same class repeatedly, scavenging.
	s = nil
	for i := range 30 {
		s = append(s, batch(byte(i%4), 20, 3, 512+i)...)
		s = append(s, opBatchFree, 18, byte((i+1)%4))
		s = append(s, make([]byte, 18)...)
		if i%10 == 9 {
			s = append(s, opScavenge, opCheck)
		}
	}
	seeds = append(seeds, s)

	// 8. Large and small interleaved, reusing freed pages.
	s = nil
	for i := range 20 {
		s = append(s, alloc(byte(i%4), 7, i*3000)...)
		s = append(s, alloc(byte(i%4), 5, i*1500)...)
		if i%3 == 2 {
			s = append(s, free(i, byte(i%4))...)
			s = append(s, free(i*5, byte((i+2)%4))...)
		}
	}
	seeds = append(seeds, b(s, []byte{opScavenge}, check))

	// 9. Typed allocations and a region, mixed with frees and a refused type.
	s = nil
	for i := range 12 {
		s = append(s, opTyped, byte(i%4), byte(i%3), byte(i*37), byte(i))
		s = append(s, opRegionAlloc, byte(i%7), byte(i*11), byte(i))
		if i%4 == 3 {
			s = append(s, free(i, byte(i%4))...)
		}
		if i == 8 {
			s = append(s, opRegionFree)
		}
	}
	seeds = append(seeds, b(s, check))
	return seeds
}

var writeFuzzSeeds = flag.Bool("write-fuzz-seeds", false, "rewrite testdata/fuzz/FuzzHeap from fuzzSeeds")

// TestWriteFuzzSeeds writes the seeds in the fuzzing engine's corpus file
// format when asked to.
func TestWriteFuzzSeeds(t *testing.T) {
	if !*writeFuzzSeeds {
		t.Skip("use -write-fuzz-seeds to rewrite the seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzHeap")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, s := range fuzzSeeds() {
		text := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%d", i+1)), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
