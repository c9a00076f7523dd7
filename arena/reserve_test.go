package arena

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/offheap/offheap/mmap"
)

// A 1 TiB reservation: its span records reach the 32-bit ID cap, which
// must still give a page-aligned mapping (it failed with mmap's
// "not aligned" error from about 910 GiB).
func TestNewHeapOneTiB(t *testing.T) {
	const reserve = 1 << 40
	h := newTestHeap(t, quiet(Config{Reserve: reserve}))
	st := h.Stats()
	if st.Reserved != reserve {
		t.Fatalf("Stats().Reserved = %d, want %d", st.Reserved, uint64(reserve))
	}
	// The span records hit the 32-bit ID cap: 256 GiB, not 31 % of 1 TiB.
	t.Logf("1 TiB heap: MetadataReserved %d GiB", st.MetadataReserved>>30)
	if st.MetadataReserved < 256<<30 || st.MetadataReserved > 258<<30 {
		t.Errorf("MetadataReserved %d, want the 256 GiB record cap plus page map and page allocator", st.MetadataReserved)
	}
	var live []unsafe.Pointer
	for _, size := range []int{8, 64, 1000, 32 << 10, 1 << 20, 64 << 20} {
		for range 3 {
			p, err := h.Alloc(size)
			if err != nil {
				t.Fatalf("Alloc(%d): %v", size, err)
			}
			fillBytes(p, size, 0x5a)
			live = append(live, p)
		}
	}
	verifyOK(t, h)
	for _, p := range live {
		if err := h.Free(p); err != nil {
			t.Fatalf("Free(%p): %v", p, err)
		}
	}
	verifyOK(t, h)
	if st := h.Stats(); st.HeapObjects != 0 || st.HeapAlloc != 0 {
		t.Fatalf("after freeing everything: %s", statsLine(st))
	}
	if err := h.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// procKB reads a "Name:   N kB" line of a /proc file.
func procKB(t *testing.T, file, name string) uint64 {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Skipf("no %s: %v", file, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, name+":"); ok {
			f := strings.Fields(rest)
			n, err := strconv.ParseUint(f[0], 10, 64)
			if err != nil {
				t.Fatalf("%s: %q", file, line)
			}
			return n << 10
		}
	}
	t.Skipf("%s has no %s", file, name)
	return 0
}

// rwBytesIn sums, from /proc/self/maps, the bytes of [base, base+size)
// mapped readable and writable: what the kernel has committed there.
func rwBytesIn(t *testing.T, base, size uintptr) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Skipf("no /proc/self/maps: %v", err)
	}
	var n uint64
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || !strings.HasPrefix(f[1], "rw") {
			continue
		}
		lo, hi, _ := strings.Cut(f[0], "-")
		a, err1 := strconv.ParseUint(lo, 16, 64)
		e, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("maps line %q", line)
		}
		if l, h := max(uintptr(a), base), min(uintptr(e), base+size); l < h {
			n += uint64(h - l)
		}
	}
	return n
}

// spanMetaRW is the read/write part of the heap's span table mappings.
func spanMetaRW(t *testing.T, h *Heap) uint64 {
	var n uint64
	for _, r := range h.spans.Regions() {
		n += rwBytesIn(t, r.Base, r.Size)
	}
	return n
}

// The span table is committed as the heap grows, not when it is made: a
// default heap (64 GiB) used to map its 20 GiB of span records read/write
// at NewHeap, which a strict commit limit (vm.overcommit_memory=2) refuses.
// Now NewHeap commits only the page allocator's top level, and after 64 MiB
// of allocations the span metadata committed is a few percent of the heap.
func TestMetadataCommittedOnDemand(t *testing.T) {
	vm0 := procKB(t, "/proc/self/status", "VmSize")
	cas0 := procKB(t, "/proc/meminfo", "Committed_AS")
	h := newTestHeap(t, quiet(Config{}))
	vm1 := procKB(t, "/proc/self/status", "VmSize")
	cas1 := procKB(t, "/proc/meminfo", "Committed_AS")
	st := h.Stats()
	pagesRes, pagesCommitted := h.pages.MetadataBytes()
	metaRes := st.MetadataReserved
	if want := uint64(h.spans.MetadataReserved() + pagesRes); metaRes != want || metaRes < st.Reserved/4 {
		t.Errorf("Stats.MetadataReserved %d, want %d (span table and page allocator mappings), about 31 %% of %d",
			metaRes, want, st.Reserved)
	}
	t.Logf("NewHeap: VmSize %d -> %d MiB (+%d MiB; heap %d MiB + metadata %d MiB reserved); Committed_AS %d -> %d MiB (system-wide)",
		vm0>>20, vm1>>20, (vm1-vm0)>>20, st.Reserved>>20, metaRes>>20, cas0>>20, cas1>>20)
	// VmSize grows by the reservations and little else (the Go runtime may
	// map a little for the heap's own Go structures).
	if d := vm1 - vm0; d < st.Reserved+metaRes-(16<<20) || d > st.Reserved+metaRes+(256<<20) {
		t.Errorf("VmSize grew by %d bytes, want about %d (heap) + %d (metadata)", d, st.Reserved, metaRes)
	}
	if rw := spanMetaRW(t, h); rw != 0 || h.spans.MetadataCommitted() != 0 {
		t.Errorf("after NewHeap: %d bytes of span metadata read/write (MetadataCommitted %d), want 0", rw, h.spans.MetadataCommitted())
	}
	if uint64(pagesCommitted) > st.Reserved>>14 {
		t.Errorf("after NewHeap: page allocator committed %d bytes of metadata, more than 1/16384 of the reservation", pagesCommitted)
	}

	// 32 MiB of 64-byte objects (the class with the most metadata per
	// page short of the tiniest) and 32 MiB in 1 MiB objects.
	for range (32 << 20) / 64 {
		if _, err := h.Alloc(64); err != nil {
			t.Fatal(err)
		}
	}
	for range 32 {
		if _, err := h.Alloc(1 << 20); err != nil {
			t.Fatal(err)
		}
	}
	st = h.Stats()
	rw := spanMetaRW(t, h)
	vm2 := procKB(t, "/proc/self/status", "VmSize")
	_, pagesCommitted = h.pages.MetadataBytes()
	t.Logf("after %d MiB allocated (HeapSys %d MiB): span metadata %d KiB read/write, page allocator %d KiB; VmSize %d MiB",
		st.HeapAlloc>>20, st.HeapSys>>20, rw>>10, pagesCommitted>>10, vm2>>20)
	if rw != uint64(h.spans.MetadataCommitted()) {
		t.Errorf("kernel shows %d bytes read/write, MetadataCommitted says %d", rw, h.spans.MetadataCommitted())
	}
	// A 64-byte span is one page with 128 slots: a 384-byte record and a
	// 4-byte page map entry, 4.7 % of the page. Allow one record batch
	// and one OS page of page map beyond that.
	want := st.HeapSys*(384+4)/PageSize + 256<<10 + uint64(os.Getpagesize())
	if rw == 0 || rw > want {
		t.Errorf("span metadata read/write after growing %d bytes: %d, want (0, %d]", st.HeapSys, rw, want)
	}
	verifyOK(t, h)
}

// A failed commit of metadata (the span page map and the page allocator's
// bitmaps and summaries while growing, span records when a span is made)
// fails the allocation with ErrOutOfMemory and leaves the heap usable: the
// next try commits it.
func TestMetadataCommitFailure(t *testing.T) {
	fi := mmap.NewFaultInjector(mmap.Real())
	h := newTestHeap(t, quiet(Config{Reserve: 64 << 20, Kernel: fi}))
	// A large object: allocPages grows (commit 1: the chunk; 2: the span
	// page map; 3: the page allocator's chunk bitmaps; 4: its lowest
	// summary level, on an OS page of its own), then the span takes a
	// record (5: the first record batch). Each try commits the pending
	// chunk again, then only the metadata not yet committed: so the try
	// after the page map failed fails its third commit (the chunk
	// bitmaps), and each later one its third (chunk, what succeeded on
	// the try before, the next part).
	for _, c := range []struct {
		nth  int
		what string
	}{{2, "page map"}, {3, "page metadata"}, {3, "page metadata"}, {3, "span records"}} {
		fi.FailNth(mmap.OpCommit, c.nth)
		p, err := h.Alloc(1 << 20)
		if err == nil || p != nil {
			t.Fatalf("Alloc with the %s commit failing = %p, %v", c.what, p, err)
		}
		if !errors.Is(err, ErrOutOfMemory) || !errors.Is(err, mmap.ErrInjected) || !strings.Contains(err.Error(), c.what) {
			t.Fatalf("Alloc with the %s commit failing: %v; want ErrOutOfMemory wrapping mmap.ErrInjected", c.what, err)
		}
		if st := h.Stats(); st.HeapObjects != 0 || st.HeapInuse != 0 {
			t.Fatalf("failed Alloc left %s", statsLine(st))
		}
		verifyOK(t, h)
	}
	p, err := h.Alloc(1 << 20)
	if err != nil {
		t.Fatalf("Alloc after the failures: %v", err)
	}
	fillBytes(p, 1<<20, 7)
	q, err := h.Alloc(64)
	if err != nil {
		t.Fatal(err)
	}
	verifyOK(t, h)
	if err := h.Free(p); err != nil {
		t.Fatal(err)
	}
	if err := h.Free(q); err != nil {
		t.Fatal(err)
	}
	verifyOK(t, h)
}

// When any of NewHeap's reservations fails (the heap, the span page map,
// the span records), it undoes the others and halves the whole request.
// Before, only a failure of the heap reservation itself was retried.
func TestNewHeapHalvesWithMetadata(t *testing.T) {
	const reserve = 256 << 20
	fi := mmap.NewFaultInjector(mmap.Real())
	h, err := NewHeap(quiet(Config{Reserve: reserve, Kernel: fi}))
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	parts := fi.Calls(mmap.OpReserve) // one attempt's reservations
	for n := 1; n <= parts; n++ {
		fi := mmap.NewFaultInjector(mmap.Real())
		fi.FailNth(mmap.OpReserve, n)
		h, err := NewHeap(quiet(Config{Reserve: reserve, Kernel: fi}))
		if err != nil {
			t.Fatalf("reservation %d of %d failing: NewHeap: %v", n, parts, err)
		}
		if got := h.Stats().Reserved; got != reserve/2 {
			t.Errorf("reservation %d failing: Reserved %d, want %d", n, got, reserve/2)
		}
		p, err := h.Alloc(1 << 20)
		if err != nil {
			t.Fatal(err)
		}
		fillBytes(p, 1<<20, 3)
		verifyOK(t, h)
		if err := h.Close(); err != nil {
			t.Fatal(err)
		}
		// Every mapping of both attempts is gone: ReserveAligned trims
		// with munmaps, so count the calls that made a mapping.
		reserves := fi.Calls(mmap.OpReserve) - 1 // the failed one made none
		if got := fi.Calls(mmap.OpRelease); got < reserves {
			t.Errorf("reservation %d failing: %d mappings made, %d munmaps", n, reserves, got)
		}
	}
}
