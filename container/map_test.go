package container

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	"github.com/offheap/offheap/arena"
)

// newHeap returns a heap closed at the end of the test; the background
// scavenger is off so HeapAlloc/HeapObjects figures are exact.
func newHeap(t testing.TB, cfg arena.Config) *arena.Heap {
	t.Helper()
	if cfg.Reserve == 0 {
		cfg.Reserve = 1 << 30
	}
	cfg.ScavengeDelay = -1
	h, err := arena.NewHeap(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

func key(i int) []byte { return fmt.Appendf(nil, "key-%d", i) }

// val returns a value whose length varies with i (0 to 40 bytes), so
// entries fall into several size classes.
func val(i, round int) []byte {
	return bytes.Repeat([]byte{byte(i + round)}, (i*7+round)%41)
}

// checkBytesMap compares m with the model: Len, every Get, and Range
// visiting each model entry exactly once.
func checkBytesMap(t *testing.T, m *BytesMap, model map[string][]byte) {
	t.Helper()
	if m.Len() != len(model) {
		t.Fatalf("Len %d, model %d", m.Len(), len(model))
	}
	for k, v := range model {
		got, ok := m.Get(nil, []byte(k))
		if !ok || !bytes.Equal(got, v) {
			t.Fatalf("Get(%q) = %q, %v; want %q", k, got, ok, v)
		}
	}
	seen := make(map[string]bool, len(model))
	m.Range(func(k, v []byte) bool {
		want, ok := model[string(k)]
		if !ok || seen[string(k)] || !bytes.Equal(v, want) {
			t.Fatalf("Range: %q → %q (in model %v, seen %v)", k, v, ok, seen[string(k)])
		}
		seen[string(k)] = true
		return true
	})
	if len(seen) != len(model) {
		t.Fatalf("Range visited %d of %d", len(seen), len(model))
	}
}

func TestBytesMapBasic(t *testing.T) {
	h := newHeap(t, arena.Config{})
	m, err := NewBytesMap(h, 0)
	if err != nil {
		t.Fatal(err)
	}
	model := map[string][]byte{}
	const n = 20000
	for round := range 3 {
		for i := range n {
			if err := m.Set(key(i), val(i, round)); err != nil {
				t.Fatal(err)
			}
			model[string(key(i))] = val(i, round)
		}
		checkBytesMap(t, m, model)
	}
	for i := 0; i < n; i += 3 {
		if !m.Delete(key(i)) {
			t.Fatalf("Delete(%q) found nothing", key(i))
		}
		if m.Delete(key(i)) {
			t.Fatalf("second Delete(%q) found it", key(i))
		}
		delete(model, string(key(i)))
	}
	checkBytesMap(t, m, model)
	if m.Has(key(0)) || !m.Has(key(1)) {
		t.Fatal("Has disagrees with the deletes")
	}
	if v, ok := m.GetString([]byte("x"), "key-1"); !ok || !bytes.Equal(v, append([]byte("x"), model["key-1"]...)) {
		t.Fatalf("GetString appended %q, %v", v, ok)
	}
	if err := m.SetString("s", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if !m.View([]byte("s"), func(v []byte) {
		if string(v) != "v" || cap(v) != 1 {
			t.Fatalf("View: %q cap %d", v, cap(v))
		}
	}) {
		t.Fatal("View found nothing")
	}
	// Empty key and empty value are entries like any other.
	if err := m.Set(nil, nil); err != nil {
		t.Fatal(err)
	}
	if v, ok := m.Get(nil, []byte{}); !ok || len(v) != 0 {
		t.Fatalf("empty key: %q %v", v, ok)
	}
	st := m.MemStats()
	if st.Entries != m.Len() || st.Resizes == 0 || st.TableBytes == 0 || st.EntryBytes == 0 {
		t.Fatalf("MemStats %+v", st)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestDeleteFreesToHeap: after Delete the entry's memory is the Heap's
// again, and after the shrink and Close nothing of the map is left.
func TestDeleteFreesToHeap(t *testing.T) {
	h := newHeap(t, arena.Config{})
	base := h.Stats()
	m, err := NewBytesMap(h, 0)
	if err != nil {
		t.Fatal(err)
	}
	const n = 50000
	for i := range n {
		if err := m.Set(key(i), val(i, 0)); err != nil {
			t.Fatal(err)
		}
	}
	full := h.Stats()
	st := m.MemStats()
	if full.HeapAlloc-base.HeapAlloc < st.EntryBytes+st.TableBytes {
		t.Fatalf("heap grew by %d bytes, map says it holds %d+%d", full.HeapAlloc-base.HeapAlloc, st.EntryBytes, st.TableBytes)
	}
	for i := range n {
		if i >= 100 {
			m.Delete(key(i))
			continue
		}
		before := h.Stats()
		m.Delete(key(i))
		after := h.Stats()
		// One entry freed: its bytes are the Heap's again at once.
		if after.HeapObjects >= before.HeapObjects || after.HeapAlloc >= before.HeapAlloc {
			t.Fatalf("Delete %d: heap objects %d → %d, bytes %d → %d", i, before.HeapObjects, after.HeapObjects, before.HeapAlloc, after.HeapAlloc)
		}
	}
	if st := m.MemStats(); st.Entries != 0 || st.EntryBytes != 0 {
		t.Fatalf("after deleting all: %+v", st)
	}
	// Only the (shrinking) tables are left; drive the shrink to its end
	// with deletes of absent keys, each one bounded step.
	for i := 0; m.MemStats().Resizing; i++ {
		m.Delete([]byte("absent"))
		if i > n {
			t.Fatal("the shrink never finishes")
		}
	}
	st = m.MemStats()
	left := h.Stats()
	if st.Buckets > 16 || left.HeapObjects-base.HeapObjects > 2 {
		t.Fatalf("after the shrink: %+v; heap holds %d objects (%d before)", st, left.HeapObjects, base.HeapObjects)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if end := h.Stats(); end.HeapObjects != base.HeapObjects || end.HeapAlloc != base.HeapAlloc {
		t.Fatalf("after Close: %d objects, %d bytes; before the map: %d, %d", end.HeapObjects, end.HeapAlloc, base.HeapObjects, base.HeapAlloc)
	}
	if err := m.Close(); !errors.Is(err, ErrClosed) || !errors.Is(err, arena.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	if err := m.Set(key(1), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Set after Close: %v", err)
	}
	if m.Has(key(1)) || m.Len() != 0 || m.Delete(key(1)) {
		t.Fatal("closed map still answers")
	}
}

// TestMoveBound: growing to many entries and shrinking back, no single
// operation moves more than moveEntries entries between tables (the map's
// own count, MapStats.MaxMoved), and, seen from the Heap, no operation
// allocates or frees more than a bounded number of objects: its entry,
// a new table's directory, one segment per moved entry, the drained
// segment and the old directory.
func TestMoveBound(t *testing.T) {
	h := newHeap(t, arena.Config{})
	m, err := NewMap[uint64, uint64](h, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 100000 // 14 grows and 10 shrinks; h.Stats per operation is the cost
	if testing.Short() || raceEnabled {
		n = 10000
	}
	// heapOps is the Heap's allocations and frees so far.
	heapOps := func() uint64 { st := h.Stats(); return st.Mallocs + st.Frees }
	const maxHeapOps = 1 + 1 + (moveEntries + 1) + 1 + 1 // entry, directory, segments, drained segment, old directory
	worst := 0
	check := func(before uint64, op string, i int) {
		if d := int(heapOps() - before); d > worst {
			worst = d
			if d > maxHeapOps {
				t.Fatalf("%s %d: %d Heap allocations and frees in one operation", op, i, d)
			}
		}
	}
	var resizing int
	for i := range n {
		before := heapOps()
		if err := m.Set(uint64(i), uint64(i)*3); err != nil {
			t.Fatal(err)
		}
		check(before, "Set", i)
		if m.MemStats().Resizing {
			resizing++
		}
	}
	st := m.MemStats()
	if st.MaxMoved > moveEntries || st.MaxMoved == 0 || st.Resizes < 10 || resizing == 0 {
		t.Fatalf("after %d inserts: %+v (%d ops while resizing)", n, st, resizing)
	}
	for i := range n {
		if v, ok := m.Get(uint64(i)); !ok || v != uint64(i)*3 {
			t.Fatalf("Get(%d) = %d, %v", i, v, ok)
		}
	}
	for i := range n - 10 {
		before := heapOps()
		if !m.Delete(uint64(i)) {
			t.Fatalf("Delete(%d) missed", i)
		}
		check(before, "Delete", i)
	}
	st2 := m.MemStats()
	if st2.MaxMoved > moveEntries || st2.Resizes <= st.Resizes || st2.Buckets >= st.Buckets {
		t.Fatalf("after the deletes: %+v (before: %+v)", st2, st)
	}
	t.Logf("grown: %+v; shrunk: %+v; at most %d Heap calls in one operation", st, st2, worst)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestShrinkFloor: a map shrinks after mass deletes down to the smallest
// table, whatever its size hint: the hint sizes the first table only.
func TestShrinkFloor(t *testing.T) {
	h := newHeap(t, arena.Config{})
	for _, hint := range []int{0, 1000} {
		m, err := NewMap[uint32, uint32](h, hint)
		if err != nil {
			t.Fatal(err)
		}
		for i := range uint32(5000) {
			_ = m.Set(i, i)
		}
		grown := m.MemStats().Buckets
		for i := range uint32(5000) {
			m.Delete(i)
		}
		for m.MemStats().Resizing {
			m.Delete(0) // absent: just a resize step
		}
		want := minBuckets
		if st := m.MemStats(); st.Buckets != want || grown < 4096 {
			t.Errorf("hint %d: grown to %d buckets, shrunk to %d; want %d", hint, grown, st.Buckets, want)
		}
		_ = m.Close()
	}
}

func TestMapPointerType(t *testing.T) {
	h := newHeap(t, arena.Config{})
	if _, err := NewMap[string, int](h, 0); !errors.Is(err, ErrPointerType) {
		t.Fatalf("string key: %v", err)
	}
	if _, err := NewMap[int, []byte](h, 0); !errors.Is(err, arena.ErrPointerType) || !strings.Contains(err.Error(), "value") {
		t.Fatalf("slice value: %v", err)
	}
	if _, err := NewMap[int, int](nil, 0); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("nil heap: %v", err)
	}
	if _, err := NewBytesMap(h, -1); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("negative hint: %v", err)
	}
}

// TestOutOfMemory fills a heap with a small MemoryLimit through a map:
// Set fails with arena.ErrOutOfMemory, the map is unchanged, and after
// deletes it takes new entries again.
func TestOutOfMemory(t *testing.T) {
	h := newHeap(t, arena.Config{MemoryLimit: 8 << 20, Reserve: 64 << 20})
	m, err := NewBytesMap(h, 0)
	if err != nil {
		t.Fatal(err)
	}
	model := map[string][]byte{}
	value := bytes.Repeat([]byte("v"), 1000)
	var failed int
	for i := 0; failed < 20; i++ {
		k := binary.AppendUvarint(nil, uint64(i))
		err := m.Set(k, value)
		if err != nil {
			if !errors.Is(err, arena.ErrOutOfMemory) {
				t.Fatalf("Set %d: %v", i, err)
			}
			failed++
			if m.Has(k) || m.Len() != len(model) {
				t.Fatalf("failed Set %d changed the map", i)
			}
			continue
		}
		model[string(k)] = value
	}
	t.Logf("%d entries fit under the limit; %+v", len(model), m.MemStats())
	checkBytesMap(t, m, model)
	// Replacing with a longer value needs a new entry: fails, old value stays.
	var some string
	for k := range model {
		some = k
		break
	}
	if err := m.SetString(some, bytes.Repeat([]byte("w"), 100000)); !errors.Is(err, arena.ErrOutOfMemory) {
		t.Fatalf("growing a value: %v", err)
	}
	checkBytesMap(t, m, model)
	n := 0
	for k := range model {
		if n++; n > len(model)/2 {
			break
		}
		m.Delete([]byte(k))
		delete(model, k)
	}
	for i := range 100 {
		k := fmt.Appendf(nil, "again-%d", i)
		if err := m.Set(k, value); err != nil {
			t.Fatalf("after freeing half: %v", err)
		}
		model[string(k)] = value
	}
	checkBytesMap(t, m, model)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestRangeMutationPanics(t *testing.T) {
	h := newHeap(t, arena.Config{})
	m, _ := NewBytesMap(h, 0)
	for i := range 10 {
		_ = m.Set(key(i), nil)
	}
	for _, op := range []func(){
		func() { _ = m.Set(key(100), nil) },
		func() { m.Delete(key(1)) },
		func() { _ = m.Close() },
	} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "during Range") {
					t.Fatalf("recovered %v", r)
				}
			}()
			m.Range(func(k, v []byte) bool {
				m.Has(k) // reads are fine
				op()
				return false
			})
		}()
	}
	if m.Len() != 10 {
		t.Fatalf("Len %d after refused mutations", m.Len())
	}
	_ = m.Set(key(100), nil) // Range has ended: writable again
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestTooLarge: a value longer than MaxLen is refused with ErrTooLarge
// before a byte of it is read. The value is a slice over 4 GiB + 1 of
// PROT_NONE address space: reading any of it would fault.
func TestTooLarge(t *testing.T) {
	mem, err := syscall.Mmap(-1, 0, MaxLen+1, syscall.PROT_NONE, syscall.MAP_PRIVATE|syscall.MAP_ANON|syscall.MAP_NORESERVE)
	if err != nil {
		t.Skipf("cannot reserve 4 GiB of address space: %v", err)
	}
	defer syscall.Munmap(mem)
	h := newHeap(t, arena.Config{})
	m, _ := NewBytesMap(h, 0)
	defer m.Close()
	if err := m.Set([]byte("k"), mem); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Set of a %d-byte value: %v", len(mem), err)
	}
	if err := m.SetString(unsafe.String(&mem[0], len(mem)), nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("SetString of a %d-byte key: %v", len(mem), err)
	}
	if m.Len() != 0 || h.Stats().HeapObjects != 0 {
		t.Fatalf("refused Sets left %d entries, %d heap objects", m.Len(), h.Stats().HeapObjects)
	}
}

// padded has 7 padding bytes after A and a float field: == ignores the
// padding and treats +0 and -0 as equal, so the hash must too.
type padded struct {
	A uint8
	B uint64
	F float64
}

// TestMapModel runs random Sets and Deletes on a Map with a padded,
// float-holding key against a Go map, which defines the expected
// semantics of ==.
func TestMapModel(t *testing.T) {
	h := newHeap(t, arena.Config{})
	m, err := NewMap[padded, [3]uint32](h, 0)
	if err != nil {
		t.Fatal(err)
	}
	model := map[padded][3]uint32{}
	r := rand.New(rand.NewPCG(3, 4))
	keyOf := func() padded {
		n := r.IntN(3000)
		f := float64(n % 7)
		if f == 0 && r.IntN(2) == 0 {
			f = math.Copysign(0, -1) // -0 == +0
		}
		return padded{A: uint8(n), B: uint64(n / 256), F: f}
	}
	for i := range 60000 {
		k := keyOf()
		switch r.IntN(3) {
		case 0, 1:
			v := [3]uint32{uint32(i), uint32(k.A), 7}
			if err := m.Set(k, v); err != nil {
				t.Fatal(err)
			}
			model[k] = v
		case 2:
			_, want := model[k]
			if m.Delete(k) != want {
				t.Fatalf("Delete(%+v) != %v", k, want)
			}
			delete(model, k)
		}
		if got, ok := m.Get(k); ok != (model[k] != [3]uint32{}) || got != model[k] {
			t.Fatalf("Get(%+v) = %v %v, model %v", k, got, ok, model[k])
		}
	}
	got := map[padded][3]uint32{}
	m.Range(func(k padded, v [3]uint32) bool {
		got[k] = v
		return true
	})
	if d := cmp.Diff(model, got); d != "" || m.Len() != len(model) {
		t.Fatalf("Len %d, model %d; diff (-model +map):\n%s", m.Len(), len(model), d)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestResizeRefused makes the Heap refuse a map's table growth while
// its entries still fit: the heap is filled with 32-byte ballast objects
// and every other one freed, so 32-byte entries find slots but no new span
// (for a directory or a 32 KiB segment) can be had. The map must go on
// past its growth point (at a higher load, or inserting into old buckets
// the drain has not reached), say so in MapStats.ResizeErr, refuse only
// with ErrOutOfMemory and stay equal to its model, and grow and finish
// resizing once the ballast is gone.
func TestResizeRefused(t *testing.T) {
	h := newHeap(t, arena.Config{MemoryLimit: 4 << 20, Reserve: 64 << 20})
	m, err := NewMap[uint64, uint64](h, 0)
	if err != nil {
		t.Fatal(err)
	}
	model := map[uint64]uint64{}
	set := func(k uint64) error {
		err := m.Set(k, ^k)
		if err == nil {
			model[k] = ^k
		} else if !errors.Is(err, arena.ErrOutOfMemory) {
			t.Fatalf("Set(%d): %v", k, err)
		}
		return err
	}
	const first = 4000 // just under a 4096-bucket table's growth point
	for i := range uint64(first) {
		if err := set(i); err != nil {
			t.Fatal(err)
		}
	}
	for m.MemStats().Resizing {
		m.Delete(1 << 62) // absent: a resize step
	}
	var ballast []unsafe.Pointer
	for {
		p, err := h.Alloc(32)
		if err != nil {
			break
		}
		ballast = append(ballast, p)
	}
	for i := 0; i < len(ballast); i += 2 {
		if err := h.Free(ballast[i]); err != nil {
			t.Fatal(err)
		}
	}
	n, refused := uint64(first), 0
	for ; n < first+min(uint64(len(ballast))/4, 12000); n++ { // far past the growth point, within the freed slots
		if set(n) != nil {
			refused++
		}
	}
	st := m.MemStats()
	t.Logf("%d of %d Sets refused with the ballast in place: %+v", refused, n-first, st)
	if !errors.Is(st.ResizeErr, arena.ErrOutOfMemory) {
		t.Fatalf("no refused resize reported: %+v", st)
	}
	if st.Entries < 2*first || st.Entries != len(model) {
		t.Fatalf("the map did not go on past its growth point: %+v (model %d)", st, len(model))
	}
	check := func() { // by hand: go-cmp sorts 40k keys by reflection, seconds under -race
		t.Helper()
		seen := 0
		m.Range(func(k, v uint64) bool {
			if want, ok := model[k]; !ok || v != want {
				t.Fatalf("map has %d → %x; model %x, %v", k, v, want, ok)
			}
			seen++
			return true
		})
		if seen != len(model) || m.Len() != len(model) {
			t.Fatalf("Range visited %d, Len %d, model %d", seen, m.Len(), len(model))
		}
	}
	check()
	for i := 1; i < len(ballast); i += 2 {
		if err := h.Free(ballast[i]); err != nil {
			t.Fatal(err)
		}
	}
	for end := n + 2000; n < end; n++ {
		if err := set(n); err != nil {
			t.Fatalf("Set %d after the ballast went: %v", n, err)
		}
	}
	// Drain; the next insert grows an overloaded table to the load factor
	// at once; drain again.
	for round := range 2 {
		for i := uint64(0); m.MemStats().Resizing; i++ {
			m.Delete(1 << 62)
			if i > n {
				t.Fatalf("the resize never finishes: %+v", m.MemStats())
			}
		}
		if round == 0 {
			if err := set(n); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	if st := m.MemStats(); st.ResizeErr != nil || st.Buckets < len(model) {
		t.Fatalf("after the ballast went: %+v", st)
	}
	check()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestSetInPlace: a replacement value that fits in the entry's memory and
// fills at least half of it is written over the old one (the entry does
// not move, the Heap allocates nothing); one that does not fit, or would
// leave more than half of the memory unused, moves to a fitting size.
func TestSetInPlace(t *testing.T) {
	h := newHeap(t, arena.Config{})
	m, err := NewBytesMap(h, 16)
	if err != nil {
		t.Fatal(err)
	}
	k := []byte("key")
	entry := func() (uintptr, int) {
		var p unsafe.Pointer
		m.View(k, func(v []byte) { p = unsafe.Add(unsafe.Pointer(unsafe.SliceData(v)), -(bytesHeader + len(k))) })
		usable, err := h.UsableSize(p)
		if err != nil {
			t.Fatal(err)
		}
		return uintptr(p), usable
	}
	set := func(n int) {
		t.Helper()
		v := bytes.Repeat([]byte{byte(n)}, n)
		if err := m.Set(k, v); err != nil {
			t.Fatal(err)
		}
		if got, ok := m.Get(nil, k); !ok || !bytes.Equal(got, v) {
			t.Fatalf("after Set of %d bytes: Get = %d bytes %v", n, len(got), ok)
		}
		if st := m.MemStats(); st.EntryBytes != uint64(bytesHeader+len(k)+n) {
			t.Fatalf("after Set of %d bytes: EntryBytes %d, want %d", n, st.EntryBytes, bytesHeader+len(k)+n)
		}
	}
	set(500)
	p0, usable := entry()
	objects := h.Stats().HeapObjects
	// Smaller, still more than half of the memory: in place.
	for _, n := range []int{400, usable/2 - bytesHeader - len(k), 300} {
		set(n)
		if p, _ := entry(); p != p0 {
			t.Fatalf("Set of %d bytes (entry %d of %d usable) moved the entry", n, bytesHeader+len(k)+n, usable)
		}
	}
	if got := h.Stats().HeapObjects; got != objects {
		t.Fatalf("in-place Sets changed HeapObjects %d → %d", objects, got)
	}
	// Under half: moves to a smaller size class.
	set(usable/2 - bytesHeader - len(k) - 1)
	p1, usable1 := entry()
	if p1 == p0 || usable1 >= usable {
		t.Fatalf("Set below half moved %#x → %#x, usable %d → %d", p0, p1, usable, usable1)
	}
	// Larger than the memory: moves to a larger class.
	set(usable1)
	if p2, usable2 := entry(); p2 == p1 || usable2 <= usable1 {
		t.Fatalf("growing Set moved %#x → %#x, usable %d → %d", p1, p2, usable1, usable2)
	}
	if got := h.Stats().HeapObjects; got != objects {
		t.Fatalf("moving Sets left HeapObjects %d, want %d", got, objects)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}
