package arena

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"

	"github.com/offheap/offheap/mmap"
	"github.com/offheap/offheap/pages"
	"github.com/offheap/offheap/sizeclasses"
)

// TestEveryClassRoundTrip allocates, for every size class and both ends of
// its size range, a span's worth and more of objects through the Heap and
// through a Cache, and checks alignment, zeroing, that no two overlap and
// that each keeps its own pattern until freed.
func TestEveryClassRoundTrip(t *testing.T) {
	h := newTestHeap(t, Config{Reserve: 512 << 20})
	c := h.NewCache()
	defer c.Close()
	type obj struct {
		p    unsafe.Pointer
		size int
		id   uint64
	}
	var id uint64
	for cl := uint8(1); cl < sizeclasses.NumClasses; cl++ {
		lo := 0
		if cl > 1 {
			lo = int(sizeclasses.Size(cl-1)) + 1
		}
		for _, size := range []int{lo, int(sizeclasses.Size(cl))} {
			if got := objClass(size); got != cl {
				t.Fatalf("size %d: class %d, want %d", size, got, cl)
			}
			for _, a := range []allocFreer{h, c} {
				n := int(sizeclasses.Objects(cl)) + 3 // into a second span
				objs := make([]obj, 0, n)
				for range n {
					p, err := a.Alloc(size)
					if err != nil {
						t.Fatalf("class %d: Alloc(%d): %v", cl, size, err)
					}
					if uintptr(p)%wantAlign(size) != 0 || uintptr(p)%sizeclasses.Align(cl) != 0 {
						t.Fatalf("class %d: Alloc(%d) = %p, want alignment %d (class alignment %d)",
							cl, size, p, wantAlign(size), sizeclasses.Align(cl))
					}
					if k := firstByteNot(p, size, 0); k >= 0 {
						t.Fatalf("class %d: Alloc(%d) = %p: byte %d not zero", cl, size, p, k)
					}
					id++
					writePattern(p, size, id)
					objs = append(objs, obj{p, size, id})
				}
				slices.SortFunc(objs, func(a, b obj) int { return cmpAddr(uintptr(a.p), uintptr(b.p)) })
				ext := uintptr(sizeclasses.Size(cl))
				for i, o := range objs {
					if i > 0 && uintptr(objs[i-1].p)+ext > uintptr(o.p) {
						t.Fatalf("class %d: objects at %p and %p overlap", cl, objs[i-1].p, o.p)
					}
					if k := findPatternError(o.p, o.size, o.id); k >= 0 {
						t.Fatalf("class %d: object %p byte %d overwritten", cl, o.p, k)
					}
				}
				st := h.Stats()
				if got := st.Classes[cl].Objects; got != uint64(n) {
					t.Fatalf("class %d: Stats says %d live objects, want %d", cl, got, n)
				}
				if got := st.Classes[cl].Spans; got < 2 {
					t.Fatalf("class %d: %d objects in %d spans, want at least 2", cl, n, got)
				}
				for i, o := range objs {
					f := []allocFreer{h, c}[i%2]
					if err := f.Free(o.p); err != nil {
						t.Fatalf("class %d: Free(%p): %v", cl, o.p, err)
					}
				}
			}
		}
		verifyOK(t, h)
	}
	st := h.Stats()
	if st.HeapObjects != 0 || st.HeapAlloc != 0 || st.Mallocs != st.Frees || st.Mallocs != id {
		t.Fatalf("after freeing everything: %s (allocated %d)", statsLine(st), id)
	}
}

// TestLargeObjects checks objects above MaxSmallSize: page aligned, zeroed,
// counted in whole pages, and reusable after free.
func TestLargeObjects(t *testing.T) {
	h := newTestHeap(t, Config{Reserve: 512 << 20})
	c := h.NewCache()
	defer c.Close()
	sizes := []int{
		sizeclasses.MaxSmallSize + 1, 40000, 5 * pages.PageSize, 15 * pages.PageSize, 16 * pages.PageSize,
		100 << 10, 1 << 20, 4<<20 - 1, 4 << 20, 5<<20 + 3, 17 << 20,
	}
	for round := range 2 {
		var ptrs []unsafe.Pointer
		var wantAlloc uint64
		for i, size := range sizes {
			a := []allocFreer{h, c}[(i+round)%2]
			p, err := a.Alloc(size)
			if err != nil {
				t.Fatalf("Alloc(%d): %v", size, err)
			}
			if uintptr(p)%pages.PageSize != 0 {
				t.Fatalf("Alloc(%d) = %p: not 8 KiB aligned", size, p)
			}
			if k := firstByteNot(p, size, 0); k >= 0 {
				t.Fatalf("Alloc(%d) = %p: byte %d not zero (round %d)", size, p, k, round)
			}
			fillBytes(p, size, byte(i+1))
			ptrs = append(ptrs, p)
			wantAlloc += objExtent(size)
		}
		st := h.Stats()
		if st.LargeObjects != uint64(len(sizes)) || st.LargeAlloc != wantAlloc || st.HeapAlloc != wantAlloc {
			t.Fatalf("round %d: LargeObjects %d, LargeAlloc %d, HeapAlloc %d; want %d, %d, %d",
				round, st.LargeObjects, st.LargeAlloc, st.HeapAlloc, len(sizes), wantAlloc, wantAlloc)
		}
		if st.HeapInuse < wantAlloc {
			t.Fatalf("HeapInuse %d < %d bytes of large objects", st.HeapInuse, wantAlloc)
		}
		verifyOK(t, h)
		for i, p := range ptrs {
			if k := firstByteNot(p, sizes[i], byte(i+1)); k >= 0 {
				t.Fatalf("object %d (%d bytes) byte %d overwritten", i, sizes[i], k)
			}
			if err := []allocFreer{c, h}[i%2].Free(p); err != nil {
				t.Fatal(err)
			}
		}
		if st := h.Stats(); st.LargeObjects != 0 || st.LargeAlloc != 0 || st.HeapAlloc != 0 {
			t.Fatalf("after freeing: %s", statsLine(st))
		}
		verifyOK(t, h)
	}
}

// TestAllocZero checks that Alloc(0) hands out distinct, aligned 8-byte
// objects of class 1.
func TestAllocZero(t *testing.T) {
	h := newTestHeap(t, Config{Reserve: 64 << 20})
	c := h.NewCache()
	defer c.Close()
	seen := map[unsafe.Pointer]bool{}
	const n = 3000
	for i := range 2 * n {
		p, err := []allocFreer{h, c}[i%2].Alloc(0)
		if err != nil {
			t.Fatal(err)
		}
		if p == nil || uintptr(p)%8 != 0 || seen[p] {
			t.Fatalf("Alloc(0) #%d = %p: nil, misaligned or handed out before", i, p)
		}
		seen[p] = true
	}
	st := h.Stats()
	if st.Classes[1].Objects != 2*n || st.HeapAlloc != 2*n*uint64(sizeclasses.Size(1)) || sizeclasses.Size(1) != 8 {
		t.Fatalf("class 1: %+v, HeapAlloc %d; want %d objects of 8 bytes", st.Classes[1], st.HeapAlloc, 2*n)
	}
	for p := range seen {
		if err := h.Free(p); err != nil {
			t.Fatal(err)
		}
	}
	verifyOK(t, h)
}

// TestZeroAfterReuse fills objects with 0xFF, frees them and allocates the
// same sizes again: the new objects must be zero, including those on
// reused addresses and on pages that held a different kind of span.
func TestZeroAfterReuse(t *testing.T) {
	h := newTestHeap(t, Config{Reserve: 256 << 20})
	for _, size := range []int{8, 24, 64, 1000, 8192, 32768, 40000, 1 << 20} {
		for ai, name := range []string{"Heap", "Cache"} {
			t.Run(fmt.Sprintf("%s/%d", name, size), func(t *testing.T) {
				var a allocFreer = h
				if ai == 1 {
					c := h.NewCache()
					defer c.Close()
					a = c
				}
				const n = 40
				old := map[unsafe.Pointer]bool{}
				// Reuse is counted over the later rounds: Heap.Alloc
				// serves each round from the goroutine's P's cache, and a
				// goroutine moved to another P between two rounds (a GC,
				// a loaded machine) starts on a fresh span there.
				reusedLater := 0
				for round := range 3 {
					var ptrs []unsafe.Pointer
					reused := 0
					for range n {
						p, err := a.Alloc(size)
						if err != nil {
							t.Fatal(err)
						}
						if k := firstByteNot(p, size, 0); k >= 0 {
							t.Fatalf("round %d: Alloc(%d) = %p (reused: %v): byte %d is %#x",
								round, size, p, old[p], k, bytesAt(p, size)[k])
						}
						if old[p] {
							reused++
						}
						fillBytes(p, size, 0xFF)
						ptrs = append(ptrs, p)
					}
					if round > 0 {
						reusedLater += reused
					}
					for _, p := range ptrs {
						if err := a.Free(p); err != nil {
							t.Fatal(err)
						}
						old[p] = true
					}
					verifyOK(t, h)
				}
				if size <= sizeclasses.MaxSmallSize && reusedLater == 0 {
					t.Errorf("no address reused in rounds 1 and 2; the test checks nothing")
				}
			})
		}
	}

	// Pages that held a large object, freed and not scavenged, become
	// small spans of every class: all of their objects must read zero.
	p, err := h.Alloc(4 << 20)
	if err != nil {
		t.Fatal(err)
	}
	fillBytes(p, 4<<20, 0xFF)
	if err := h.Free(p); err != nil {
		t.Fatal(err)
	}
	c := h.NewCache()
	defer c.Close()
	lo, hi := uintptr(p), uintptr(p)+4<<20
	landed := 0
	for cl := uint8(1); cl < sizeclasses.NumClasses; cl++ {
		size := int(sizeclasses.Size(cl))
		for range sizeclasses.Objects(cl) {
			q, err := c.Alloc(size)
			if err != nil {
				t.Fatal(err)
			}
			if uintptr(q) >= lo && uintptr(q) < hi {
				landed++
			}
			if k := firstByteNot(q, size, 0); k >= 0 {
				t.Fatalf("class %d object %p on reused pages: byte %d is %#x", cl, q, k, bytesAt(q, size)[k])
			}
		}
	}
	if landed == 0 {
		t.Errorf("no small object landed on the freed large object's pages; the test checks nothing")
	}
	t.Logf("%d small objects landed on the freed large object's pages", landed)
}

// TestStatsPerClass checks every per-class figure after a known sequence.
func TestStatsPerClass(t *testing.T) {
	h := newTestHeap(t, quiet(Config{Reserve: 64 << 20}))
	c := h.NewCache()
	x, y := sizeclasses.SizeToClass(64), sizeclasses.SizeToClass(1000)
	sx, sy := uint64(sizeclasses.Size(x)), uint64(sizeclasses.Size(y))
	alloc := func(a allocFreer, n int) unsafe.Pointer {
		t.Helper()
		p, err := a.Alloc(n)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	free := func(f allocFreer, p unsafe.Pointer) {
		t.Helper()
		if err := f.Free(p); err != nil {
			t.Fatal(err)
		}
	}
	want := make([]ClassStats, sizeclasses.NumClasses)
	for cl := 1; cl < len(want); cl++ {
		want[cl].Size = uint64(sizeclasses.Size(uint8(cl)))
	}
	check := func(stage string, objs, heapAlloc, mallocs, frees, large, inusePages uint64) {
		t.Helper()
		publishBatches(t, h)
		st := h.Stats()
		// Only the figures the test is about: Stats may grow more.
		got := make([]ClassStats, len(st.Classes))
		for i, c := range st.Classes {
			got[i] = ClassStats{Size: c.Size, Objects: c.Objects, Spans: c.Spans, Mallocs: c.Mallocs, Frees: c.Frees}
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s: Classes (-want +got):\n%s", stage, d)
		}
		type totals struct{ HeapObjects, HeapAlloc, Mallocs, Frees, LargeObjects, LargeAlloc, HeapInuse uint64 }
		w := totals{objs, heapAlloc, mallocs, frees, large, large * 13 * pages.PageSize, inusePages * pages.PageSize}
		g := totals{st.HeapObjects, st.HeapAlloc, st.Mallocs, st.Frees, st.LargeObjects, st.LargeAlloc, st.HeapInuse}
		if d := cmp.Diff(w, g); d != "" {
			t.Errorf("%s: totals (-want +got):\n%s", stage, d)
		}
		if err := statsIdentities(st); err != nil {
			t.Errorf("%s: %v", stage, err)
		}
		verifyOK(t, h)
	}

	px := []unsafe.Pointer{alloc(c, 64), alloc(c, 60), alloc(c, 49)}
	py := []unsafe.Pointer{alloc(c, 1000), alloc(c, 999)}
	free(c, px[0])          // local free
	free(h, py[1])          // remote free, counted by the Heap's per-P cache
	pl := alloc(c, 100<<10) // 13 pages
	want[x] = ClassStats{Size: sx, Objects: 2, Spans: 1, Mallocs: 3, Frees: 1}
	want[y] = ClassStats{Size: sy, Objects: 1, Spans: 1, Mallocs: 2, Frees: 1}
	inuse := uint64(sizeclasses.Pages(x) + sizeclasses.Pages(y) + 13)
	check("after the sequence", 4, 2*sx+sy+13*pages.PageSize, 6, 2, 1, inuse)

	// Closing the cache folds its counters into the heap's and moves its
	// spans (still holding live objects) to the central lists.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	check("after Cache.Close", 4, 2*sx+sy+13*pages.PageSize, 6, 2, 1, inuse)

	free(h, px[1])
	free(h, px[2]) // the span's last object: the span goes back
	want[x] = ClassStats{Size: sx, Objects: 0, Spans: 0, Mallocs: 3, Frees: 3}
	check("after freeing class x", 2, sy+13*pages.PageSize, 6, 4, 1, inuse-uint64(sizeclasses.Pages(x)))

	free(h, py[0])
	free(h, pl)
	want[y] = ClassStats{Size: sy, Objects: 0, Spans: 0, Mallocs: 2, Frees: 2}
	check("after freeing everything", 0, 0, 6, 6, 0, 0)
}

// TestCacheCloseReturnsSpans checks that Close hands back spans with no
// live object and keeps the others reachable on the central lists.
func TestCacheCloseReturnsSpans(t *testing.T) {
	h := newTestHeap(t, Config{Reserve: 256 << 20})
	c := h.NewCache()
	sizes := []int{16, 256, 4096, 20000}
	var keep unsafe.Pointer
	for _, size := range sizes {
		var ptrs []unsafe.Pointer
		for range 100 {
			p, err := c.Alloc(size)
			if err != nil {
				t.Fatal(err)
			}
			fillBytes(p, size, 7)
			ptrs = append(ptrs, p)
		}
		for i, p := range ptrs {
			if size == 256 && i == 42 {
				keep = p
				continue
			}
			if err := c.Free(p); err != nil {
				t.Fatal(err)
			}
		}
	}
	before := h.Stats()
	if before.HeapInuse < uint64(len(sizes))*pages.PageSize {
		t.Fatalf("HeapInuse %d before Close: the cache holds less than a page per class", before.HeapInuse)
	}
	verifyOK(t, h)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	cl := sizeclasses.SizeToClass(256)
	st := h.Stats()
	if want := uint64(sizeclasses.Pages(cl) * pages.PageSize); st.HeapInuse != want {
		t.Errorf("HeapInuse after Close = %d, want %d (one span of class %d); before Close %d",
			st.HeapInuse, want, cl, before.HeapInuse)
	}
	for i, cs := range st.Classes {
		if want := uint64(0); uint8(i) == cl {
			want = 1
			if cs.Spans != want || cs.Objects != 1 {
				t.Errorf("class %d: %+v, want 1 span, 1 object", i, cs)
			}
		} else if cs.Spans != 0 || cs.Objects != 0 {
			t.Errorf("class %d: %+v, want no spans or objects", i, cs)
		}
	}
	if st.HeapIdle != st.HeapSys-st.HeapInuse || st.HeapObjects != 1 {
		t.Errorf("after Close: %s", statsLine(st))
	}
	verifyOK(t, h)
	if k := firstByteNot(keep, 256, 7); k >= 0 {
		t.Fatalf("kept object byte %d changed by Close", k)
	}
	if err := h.Free(keep); err != nil {
		t.Fatal(err)
	}
	publishBatches(t, h)
	if st := h.Stats(); st.HeapInuse != 0 || st.HeapObjects != 0 {
		t.Errorf("after the last free: %s", statsLine(st))
	}
	verifyOK(t, h)
}

// TestManyHeaps checks that heaps in one process are independent.
func TestManyHeaps(t *testing.T) {
	const n = 6
	var hs [n]*Heap
	var objs [n][]unsafe.Pointer
	for i := range hs {
		hs[i] = newTestHeap(t, quiet(Config{Reserve: 64 << 20}))
	}
	for i, h := range hs {
		for k := range 50 * (i + 1) {
			size := []int{16, 300, 5000, 50000}[k%4]
			p, err := h.Alloc(size)
			if err != nil {
				t.Fatal(err)
			}
			writePattern(p, 16, uint64(i))
			objs[i] = append(objs[i], p)
		}
	}
	// Reservations are disjoint and hold their own objects only.
	for i, h := range hs {
		for j, g := range hs {
			if i != j && h.base < g.limit && g.base < h.limit {
				t.Fatalf("heaps %d and %d overlap", i, j)
			}
		}
		for _, p := range objs[i] {
			if uintptr(p) < h.base || uintptr(p) >= h.limit {
				t.Fatalf("heap %d handed out %p outside its reservation", i, p)
			}
		}
	}
	// Cross frees are refused and change nothing.
	for i, h := range hs {
		j := (i + 1) % n
		before := h.Stats()
		if err := h.Free(objs[j][0]); !errors.Is(err, ErrInvalidPointer) {
			t.Fatalf("heap %d freeing heap %d's object: %v, want ErrInvalidPointer", i, j, err)
		}
		if d := cmp.Diff(before, h.Stats()); d != "" {
			t.Fatalf("heap %d: refused free changed Stats:\n%s", i, d)
		}
		if st := h.Stats(); st.HeapObjects != uint64(len(objs[i])) {
			t.Fatalf("heap %d: %d objects, want %d", i, st.HeapObjects, len(objs[i]))
		}
	}
	// Closing some leaves the others intact.
	for i := 0; i < n; i += 2 {
		if err := hs[i].Close(); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i < n; i += 2 {
		verifyOK(t, hs[i])
		for _, p := range objs[i] {
			if k := findPatternError(p, 16, uint64(i)); k >= 0 {
				t.Fatalf("heap %d object %p damaged", i, p)
			}
			if err := hs[i].Free(p); err != nil {
				t.Fatal(err)
			}
		}
		if st := hs[i].Stats(); st.HeapObjects != 0 {
			t.Fatalf("heap %d: %d objects left", i, st.HeapObjects)
		}
		verifyOK(t, hs[i])
	}
}

// vmaNamesSupported reports whether the kernel shows anonymous mapping
// names: it names a scratch mapping and looks for it in /proc/self/maps.
func vmaNamesSupported(t *testing.T) bool {
	m, err := mmap.Reserve(uintptr(os.Getpagesize()), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release()
	name := fmt.Sprintf("offheap-probe-%d", os.Getpid())
	if err := m.SetName(name); err != nil {
		return false
	}
	maps, err := os.ReadFile("/proc/self/maps")
	return err == nil && strings.Contains(string(maps), "[anon:"+name+"]")
}

// TestVMAName checks that the reservation shows its name in
// /proc/self/maps where the kernel supports naming.
func TestVMAName(t *testing.T) {
	if !vmaNamesSupported(t) {
		t.Skip("kernel does not name anonymous mappings (needs 5.17+ with CONFIG_ANON_VMA_NAME)")
	}
	for _, name := range []string{"", "offheap-test-name"} {
		h := newTestHeap(t, Config{Reserve: 64 << 20, Name: name})
		want := name
		if want == "" {
			want = DefaultName
		}
		maps, err := os.ReadFile("/proc/self/maps")
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, line := range strings.Split(string(maps), "\n") {
			var lo, hi uintptr
			if _, err := fmt.Sscanf(line, "%x-%x", &lo, &hi); err != nil {
				continue
			}
			if lo <= h.base && h.base < hi {
				found = strings.HasSuffix(line, "[anon:"+want+"]")
				if !found {
					t.Errorf("the reservation's line: %q, want [anon:%s]", line, want)
				}
			}
		}
		if !found {
			t.Errorf("no [anon:%s] line covers the reservation at %#x", want, h.base)
		}
		h.Close()
	}
}

// TestScavengeReleasesRSS allocates and touches 256 MiB of 4 KiB objects,
// frees them all and scavenges: the resident set must drop by at least
// 90% of what was allocated.
func TestScavengeReleasesRSS(t *testing.T) {
	if testing.Short() {
		t.Skip("touches 256 MiB")
	}
	const total, size = 256 << 20, 4096
	h := newTestHeap(t, quiet(Config{Reserve: 512 << 20}))
	c := h.NewCache()
	ptrs := make([]unsafe.Pointer, 0, total/size)
	runtime.GC()
	debug.FreeOSMemory()
	start := residentBytes(t)
	for range total / size {
		p, err := c.Alloc(size)
		if err != nil {
			t.Fatal(err)
		}
		// One write per object: each 4 KiB object fills one OS page.
		*(*uint64)(p) = uint64(uintptr(p))
		*(*uint64)(unsafe.Add(p, size-8)) = 1
		ptrs = append(ptrs, p)
	}
	touched := residentBytes(t)
	for _, p := range ptrs {
		if *(*uint64)(p) != uint64(uintptr(p)) {
			t.Fatalf("object %p lost its contents", p)
		}
		if err := c.Free(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	freed := residentBytes(t)
	released := h.Scavenge()
	after := residentBytes(t)
	st := h.Stats()
	t.Logf("RSS: start %d MiB, after touching %d MiB, after freeing %d MiB, after Scavenge %d MiB; Scavenge released %d MiB",
		start>>20, touched>>20, freed>>20, after>>20, released>>20)
	t.Logf("after Scavenge: %s", statsLine(st))
	if touched < start+total*9/10 {
		t.Fatalf("touching %d MiB raised RSS by only %d MiB: cannot measure", total>>20, (touched-start)>>20)
	}
	if released < total*9/10 {
		t.Errorf("Scavenge released %d bytes, want at least 90%% of %d", released, total)
	}
	if after > freed || freed-after < total*9/10 {
		t.Errorf("RSS dropped from %d to %d MiB after Scavenge, want a drop of at least %d MiB",
			freed>>20, after>>20, total*9/10>>20)
	}
	if st.HeapInuse != 0 || st.HeapReleased < st.HeapIdle-uint64(len(h.perPCaches())+1)*pages.CachePages*pages.PageSize {
		t.Errorf("after Scavenge: %s", statsLine(st))
	}
	verifyOK(t, h)
	if again := h.Scavenge(); again != 0 {
		t.Errorf("a second Scavenge released %d bytes", again)
	}
}

// TestFaultInjection makes the commit that a growing allocation needs
// fail: the allocation must return an error wrapping ErrOutOfMemory and
// the injected error, change no counters, and a retry must succeed.
func TestFaultInjection(t *testing.T) {
	type step struct {
		name  string
		fails int // commits to fail
		alloc func(h *Heap, c *Cache) (unsafe.Pointer, error)
		size  int
	}
	steps := []step{
		{name: "small via Heap", fails: 1, size: 64, alloc: func(h *Heap, c *Cache) (unsafe.Pointer, error) { return h.Alloc(64) }},
		{name: "large via Heap", fails: 1, size: 1 << 20, alloc: func(h *Heap, c *Cache) (unsafe.Pointer, error) { return h.Alloc(1 << 20) }},
		// A Cache grows twice on a miss: once for its page cache, once for
		// the span itself, so both commits must fail for the call to fail.
		{name: "small via Cache", fails: 2, size: 64, alloc: func(h *Heap, c *Cache) (unsafe.Pointer, error) { return c.Alloc(64) }},
		{name: "large via Cache", fails: 1, size: 1 << 20, alloc: func(h *Heap, c *Cache) (unsafe.Pointer, error) { return c.Alloc(1 << 20) }},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			fi := mmap.NewFaultInjector(mmap.Real())
			h := newTestHeap(t, quiet(Config{Reserve: 64 << 20, Kernel: fi}))
			c := h.NewCache()
			defer c.Close()
			for k := 1; k <= s.fails; k++ {
				fi.FailNth(mmap.OpCommit, k)
			}
			commits := fi.Calls(mmap.OpCommit)
			before := h.Stats()
			p, err := s.alloc(h, c)
			if err == nil || p != nil {
				t.Fatalf("Alloc with failing commits = %p, %v; want an error", p, err)
			}
			if !errors.Is(err, ErrOutOfMemory) || !errors.Is(err, mmap.ErrInjected) {
				t.Fatalf("Alloc error %v: want it to wrap ErrOutOfMemory and mmap.ErrInjected", err)
			}
			if got := fi.Calls(mmap.OpCommit) - commits; got != s.fails {
				t.Fatalf("%d commits tried, want %d", got, s.fails)
			}
			after := h.Stats()
			if d := cmp.Diff(before, after); d != "" {
				t.Errorf("failed Alloc changed Stats (-before +after):\n%s", d)
			}
			verifyOK(t, h)

			p, err = s.alloc(h, c)
			if err != nil {
				t.Fatalf("retry: %v", err)
			}
			if k := firstByteNot(p, s.size, 0); k >= 0 {
				t.Fatalf("retry: byte %d not zero", k)
			}
			fillBytes(p, s.size, 1)
			if st := h.Stats(); st.HeapObjects != 1 || st.HeapSys == 0 {
				t.Fatalf("after the retry: %s", statsLine(st))
			}
			verifyOK(t, h)
			if err := h.Free(p); err != nil {
				t.Fatal(err)
			}
			verifyOK(t, h)
		})
	}

	// NewHeap reserves, and commits one thing: the page allocator's
	// eager metadata (its bitmaps over chunks and top summary level, one
	// OS page for this heap). Each of its reservations can fail it, and
	// then every earlier one is undone.
	t.Run("NewHeap", func(t *testing.T) {
		fi := mmap.NewFaultInjector(mmap.Real())
		h, err := NewHeap(Config{Reserve: 64 << 20, Kernel: fi})
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Calls(mmap.OpCommit); got != 1 {
			t.Errorf("NewHeap made %d commits, want 1 (the page allocator's eager metadata)", got)
		}
		h.Close()
		reserves := fi.Calls(mmap.OpReserve)
		for n := 1; n <= reserves; n++ {
			fi := mmap.NewFaultInjector(mmap.Real())
			fi.FailNth(mmap.OpReserve, n)
			h, err := NewHeap(Config{Reserve: 64 << 20, Kernel: fi})
			if err == nil {
				h.Close()
				t.Fatalf("NewHeap succeeded with reservation %d failing", n)
			}
			if !errors.Is(err, mmap.ErrInjected) || !errors.Is(err, ErrOutOfMemory) || h != nil {
				t.Fatalf("NewHeap = %p, %v; want nil and an error wrapping ErrOutOfMemory and mmap.ErrInjected", h, err)
			}
			if got, want := fi.Calls(mmap.OpRelease), fi.Calls(mmap.OpReserve)-1; got < want {
				t.Errorf("NewHeap failed after %d reservations but released only %d", want+1, got)
			}
		}
	})
}
