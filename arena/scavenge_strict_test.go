package arena

import (
	"bytes"
	"os"
	"runtime/debug"
	"testing"
	"unsafe"

	"github.com/offheap/offheap/pages"
	"github.com/offheap/offheap/sizeclasses"
)

// Strict mode: released memory is PROT_NONE, so touching it faults, and
// the number of mappings stays bounded however the heap is fragmented.

// scavTouchFaults writes to p and reports the faulting address, or 0 if
// the write went through.
func scavTouchFaults(p unsafe.Pointer) (addr uintptr) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		e, ok := r.(interface{ Addr() uintptr })
		if !ok {
			panic(r)
		}
		addr = e.Addr()
	}()
	*(*byte)(p) = 1
	return 0
}

func TestStrictTouchFaults(t *testing.T) {
	h := newScavHeap(t, Config{Reserve: 64 << 20, ScavengeDelay: -1, Decommit: DecommitStrict})
	const size = 8 << 20 // two whole chunks at least partly
	p, err := h.Alloc(size)
	if err != nil {
		t.Fatal(err)
	}
	scavTouch(p, size)
	if a := scavTouchFaults(p); a != 0 {
		t.Fatalf("live memory faulted at %#x", a)
	}
	if err := h.Free(p); err != nil {
		t.Fatal(err)
	}
	if rel := h.Scavenge(); rel < size {
		t.Fatalf("released %d", rel)
	}
	for _, off := range []uintptr{0, 4096, pages.ChunkBytes + 12345, size - 1} {
		q := unsafe.Add(p, off)
		a := scavTouchFaults(q)
		if a == 0 {
			t.Fatalf("touching released memory at +%#x did not fault", off)
		}
		if a < uintptr(p) || a >= uintptr(p)+size {
			t.Fatalf("fault at %#x, outside the released range [%p, +%#x)", a, p, size)
		}
	}
	scavVerify(t, h)
	// Reuse re-commits: the memory is readable, writable and zero.
	q, err := h.Alloc(size)
	if err != nil {
		t.Fatal(err)
	}
	if a := scavTouchFaults(q); a != 0 {
		t.Fatalf("re-committed memory faulted at %#x", a)
	}
	*(*byte)(q) = 0
	for i, c := range unsafe.Slice((*byte)(q), size) {
		if c != 0 {
			t.Fatalf("byte %d = %#x", i, c)
		}
	}
	scavVerify(t, h)
}

// scavMaps counts the lines of /proc/self/maps (one per mapping) that
// fall in the heap's reservation, and in all.
func scavMaps(t testing.TB, h *Heap) (heap, all int) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Skipf("no /proc/self/maps: %v", err)
	}
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		all++
		var lo, hi uintptr
		dash := bytes.IndexByte(line, '-')
		sp := bytes.IndexByte(line, ' ')
		if dash < 0 || sp < dash {
			continue
		}
		lo, hi = scavHex(line[:dash]), scavHex(line[dash+1:sp])
		if lo < h.limit && hi > h.base {
			heap++
		}
	}
	return heap, all
}

func scavHex(b []byte) uintptr {
	var x uintptr
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			x = x<<4 | uintptr(c-'0')
		case c >= 'a' && c <= 'f':
			x = x<<4 | uintptr(c-'a'+10)
		}
	}
	return x
}

// The adversary: a heap of 1-page spans, every other one freed, then
// Scavenge; then whole chunks freed in a checkerboard, then Scavenge;
// then reuse. PROT_NONE only ever covers whole chunks, so the heap's
// mappings stay at most grown chunks + 2 (documented in package
// scavenge); a per-run PROT_NONE would need one per freed page.
func TestStrictMappingBound(t *testing.T) {
	h := newScavHeap(t, Config{Reserve: 512 << 20, ScavengeDelay: -1, Decommit: DecommitStrict})
	const obj = 8192 // size class with one object per 1-page span
	if scavClassOf(obj) == 0 {
		t.Skip("no 8 KiB class")
	}
	var ps []unsafe.Pointer
	for range (256 << 20) / obj {
		p, err := h.Alloc(obj)
		if err != nil {
			t.Fatal(err)
		}
		*(*byte)(p) = 1
		ps = append(ps, p)
	}
	grownChunks := int(h.Stats().HeapSys / pages.ChunkBytes)
	bound := grownChunks + 2
	h0, all0 := scavMaps(t, h)
	t.Logf("start: %d heap mappings (%d in the process), %d chunks grown; bound %d", h0, all0, grownChunks, bound)

	check := func(what string) {
		t.Helper()
		n, all := scavMaps(t, h)
		t.Logf("%s: %d heap mappings (%d in the process)", what, n, all)
		if n > bound {
			t.Fatalf("%s: %d heap mappings > bound %d", what, n, bound)
		}
		scavVerify(t, h)
	}
	// Checkerboard of whole chunks: every other chunk wholly freed and
	// released as PROT_NONE islands, the worst case for whole chunks.
	for i, p := range ps {
		if (uintptr(p)-h.base)/pages.ChunkBytes%2 == 0 {
			h.Free(p)
			ps[i] = nil
		}
	}
	h.Scavenge()
	check("checkerboard of free chunks scavenged")
	if n, _ := scavMaps(t, h); n < h0+grownChunks/2 {
		t.Fatalf("checkerboard made only %d heap mappings: strict release not in effect?", n)
	}
	// Every other page of the remaining chunks freed: only partial runs,
	// released without PROT_NONE: no new mapping. (Per-run PROT_NONE
	// would add two mappings per freed page: 32 Ki here.)
	n1, _ := scavMaps(t, h)
	for i, p := range ps {
		if p != nil && i%2 == 0 {
			h.Free(p)
			ps[i] = nil
		}
	}
	h.Scavenge()
	check("every other page freed and scavenged")
	if n, _ := scavMaps(t, h); n > n1 {
		t.Fatalf("partial releases split the mapping: %d -> %d", n1, n)
	}
	// Reuse everything: re-commits merge the mappings again.
	for i := range ps {
		if ps[i] == nil {
			p, err := h.Alloc(obj)
			if err != nil {
				t.Fatal(err)
			}
			*(*byte)(p) = 1
			ps[i] = p
		}
	}
	check("all reused")
	for _, p := range ps {
		h.Free(p)
	}
	h.Scavenge()
	check("all freed and scavenged")
}

func scavClassOf(size int) int {
	cl := sizeclasses.SizeToClass(uintptr(size))
	if cl == 0 || sizeclasses.Size(cl) != uintptr(size) || sizeclasses.Pages(cl) != 1 {
		return 0
	}
	return int(cl)
}
