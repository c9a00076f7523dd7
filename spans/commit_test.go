package spans

import (
	"bufio"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/offheap/offheap/mmap"
)

// rwBytes reads /proc/self/maps and returns how many bytes of r are mapped
// readable and writable: what the kernel says is committed.
func rwBytes(t *testing.T, r Region) uintptr {
	t.Helper()
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var n uintptr
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || !strings.HasPrefix(fields[1], "rw") {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			t.Fatalf("maps line %q", sc.Text())
		}
		a, err1 := strconv.ParseUint(lo, 16, 64)
		b, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("maps line %q", sc.Text())
		}
		lo2, hi2 := max(uintptr(a), r.Base), min(uintptr(b), r.Base+r.Size)
		if lo2 < hi2 {
			n += hi2 - lo2
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// NewTable commits nothing; Grow commits the page map as a prefix and New
// commits records a batch at a time, and the kernel's view (/proc/self/maps)
// agrees with MetadataCommitted at every step. (Before, both mappings were
// read/write from the start: 2.5 KiB of address space committed per heap
// page, 20 GiB for a 64 GiB heap.)
func TestCommitOnDemand(t *testing.T) {
	const heapPages = 1 << 20 // an 8 GiB heap
	fi := mmap.NewFaultInjector(nil)
	tb, err := NewTable(testBase, heapPages, fi)
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	rg := tb.Regions()
	kernelRW := func() uintptr { return rwBytes(t, rg[0]) + rwBytes(t, rg[1]) }
	if got := fi.Calls(mmap.OpCommit); got != 0 {
		t.Fatalf("NewTable made %d commits, want none", got)
	}
	if got := kernelRW(); got != 0 || tb.MetadataCommitted() != 0 {
		t.Fatalf("after NewTable: %d bytes read/write in the kernel, MetadataCommitted %d; want 0",
			got, tb.MetadataCommitted())
	}
	if res := tb.MetadataReserved(); res != rg[0].Size+rg[1].Size || res < heapPages*4 {
		t.Fatalf("MetadataReserved %d, regions %+v", res, rg)
	}
	// Nothing grown: every lookup misses without reading the page map.
	for _, addr := range []uintptr{testBase, testBase + 5*pageSize, testBase + (heapPages-1)*pageSize} {
		if s := tb.Lookup(addr); s != nil || tb.FreedStart(addr) || tb.PageSpan((addr-testBase)/pageSize) != 0 {
			t.Fatalf("address %#x of an ungrown table: found something", addr)
		}
	}

	// Grow 512 pages (one 4 MiB chunk): 2 KiB of entries, one OS page.
	if err := tb.Grow(512); err != nil {
		t.Fatal(err)
	}
	ps := mmap.PageSize()
	if got, want := kernelRW(), roundUp(512*4, ps); got != want || tb.MetadataCommitted() != want {
		t.Fatalf("after Grow(512): kernel %d rw bytes, MetadataCommitted %d; want %d", got, tb.MetadataCommitted(), want)
	}
	// A failing commit leaves the table as it was; a retry works.
	fi.FailNth(mmap.OpCommit, 1)
	if err := tb.Grow(4096); !errors.Is(err, mmap.ErrInjected) {
		t.Fatalf("Grow with a failing commit = %v, want mmap.ErrInjected", err)
	}
	if s := tb.Lookup(testBase + 4000*pageSize); s != nil {
		t.Fatal("Lookup past a failed Grow found a span")
	}
	if err := tb.Grow(4096); err != nil {
		t.Fatalf("Grow retry: %v", err)
	}
	pageMapRW := roundUp(4096*4, ps)
	if got := rwBytes(t, rg[0]); got != pageMapRW {
		t.Fatalf("page map after Grow(4096): %d rw bytes, want %d", got, pageMapRW)
	}
	if err := tb.Grow(heapPages + 1); err == nil {
		t.Fatal("Grow past the heap succeeded")
	}

	// Records: a failing commit makes New fail and changes nothing.
	fi.FailNth(mmap.OpCommit, 1)
	if s, err := tb.New(maxSlots); !errors.Is(err, mmap.ErrInjected) || s != nil {
		t.Fatalf("New with a failing commit = %v, %v; want mmap.ErrInjected", s, err)
	}
	if tb.inUseRecords() != 0 || rwBytes(t, rg[1]) != 0 {
		t.Fatalf("failed New left %d records, %d rw record bytes", tb.inUseRecords(), rwBytes(t, rg[1]))
	}
	// Then records are committed in batches as they are taken: never more
	// than one batch ahead of the high-water mark.
	recSize := headerSize + maxSlots
	var taken []*Span
	for i := 0; i < 3*recordCommitBatch/int(recSize); i++ {
		s := mustNew(t, tb, maxSlots)
		s.Base, s.NPages = testBase+uintptr(i%4096)*pageSize, 1
		tb.Publish(s, StateInUse) // the record is writable memory
		tb.Unpublish(s)
		taken = append(taken, s)
		high := tb.high.Load()
		got := rwBytes(t, rg[1])
		if got < high || got > roundUp(high, recordCommitBatch) {
			t.Fatalf("after %d records (high-water %d): %d record bytes rw, want [%d, %d]",
				i+1, high, got, high, roundUp(high, recordCommitBatch))
		}
		if tb.MetadataCommitted() != pageMapRW+got {
			t.Fatalf("MetadataCommitted %d, kernel says %d", tb.MetadataCommitted(), pageMapRW+got)
		}
	}
	// Reused records commit nothing more.
	before := fi.Calls(mmap.OpCommit)
	for _, s := range taken {
		tb.Release(s)
	}
	for range taken {
		mustNew(t, tb, maxSlots)
	}
	if got := fi.Calls(mmap.OpCommit) - before; got != 0 {
		t.Fatalf("reusing records made %d commits", got)
	}
}

// Publishing a span over pages not grown yet is a caller bug: it panics
// naming the span instead of faulting on the uncommitted page map.
func TestPublishPastGrownPanics(t *testing.T) {
	tb, err := NewTable(testBase, 4096, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	if err := tb.Grow(1024); err != nil {
		t.Fatal(err)
	}
	s := mustNew(t, tb, 1)
	s.Base, s.NPages = testBase+1023*pageSize, 2
	wantPanic(t, "Publish past the grown pages", func() { tb.Publish(s, StateLarge) }, "Publish", "past the")
}

// Goroutines taking records on a fresh table all reach the end of the
// committed prefix at about the same time and commit concurrently: every
// record they get must be distinct and writable, and the committed prefix
// must cover the high-water mark.
func TestConcurrentRecordCommit(t *testing.T) {
	const workers, each = 8, 100 // 800 full records: about 4 commit batches
	tb := newTestTable(t, 1<<16)
	got := make([][]*Span, workers)
	errs := make(chan error, workers)
	start := make(chan struct{})
	for w := range workers {
		go func() {
			<-start
			for range each {
				s, err := tb.New(maxSlots)
				if err != nil {
					errs <- err
					return
				}
				*s.Slot(maxSlots - 1) = SlotAllocated // the record's last byte
				got[w] = append(got[w], s)
			}
			errs <- nil
		}()
	}
	close(start)
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	seen := map[ID]bool{}
	for _, ss := range got {
		for _, s := range ss {
			if seen[s.ID()] {
				t.Fatalf("record %d handed out twice", s.ID())
			}
			seen[s.ID()] = true
		}
	}
	if high, c := tb.high.Load(), tb.recCommitted.Load(); c < high || c > roundUp(high, recordCommitBatch) {
		t.Fatalf("records committed %d for a high-water mark of %d", c, high)
	}
	if rw := rwBytes(t, tb.Regions()[1]); rw != tb.recCommitted.Load() {
		t.Fatalf("kernel shows %d record bytes read/write, the table %d", rw, tb.recCommitted.Load())
	}
}
