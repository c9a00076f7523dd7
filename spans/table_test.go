package spans

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/offheap/offheap/mmap"
)

func TestNewPanicsOnBadCount(t *testing.T) {
	tb := newTestTable(t, 4)
	for _, n := range []uint32{0, maxSlots + 1, 4096, ^uint32(0)} {
		wantPanic(t, "New("+strconv.Itoa(int(n))+")", func() { tb.New(n) }, "New("+strconv.Itoa(int(n))+")", "out of range")
	}
	if got := tb.inUseRecords(); got != 0 {
		t.Errorf("inUseRecords after failed News = %d, want 0", got)
	}
}

func TestNewFreshRecord(t *testing.T) {
	tb := newTestTable(t, 16)
	seen := map[ID]bool{}
	for i, n := range slotCounts {
		s := mustNew(t, tb, n)
		if s.ID() == 0 {
			t.Fatalf("New(%d) gave ID 0, which means no span", n)
		}
		if seen[s.ID()] {
			t.Fatalf("New(%d) gave ID %d twice", n, s.ID())
		}
		seen[s.ID()] = true
		if tb.Span(s.ID()) != s {
			t.Errorf("Span(%d) = %p, want %p", s.ID(), tb.Span(s.ID()), s)
		}
		if s.State() != StateInit {
			t.Errorf("New(%d): state %v, want init", n, s.State())
		}
		if s.Gen() == 0 {
			t.Errorf("New(%d): Gen 0 on a taken record", n)
		}
		if s.Owner() != OwnerCentral || s.List != ListNone || s.next != 0 || s.prev != 0 || s.Allocated() != 0 {
			t.Errorf("New(%d): owner %d list %d next %d prev %d allocated %d, want all zero",
				n, s.Owner(), s.List, s.next, s.prev, s.Allocated())
		}
		if s.HasPending() {
			t.Errorf("New(%d): pending frees", n)
		}
		if got := tb.inUseRecords(); got != i+1 {
			t.Errorf("inUseRecords = %d, want %d", got, i+1)
		}
	}
}

func TestNewDoesNotOverlapRecords(t *testing.T) {
	// Fill every record completely and check no other record changed.
	tb := newTestTable(t, 32)
	rng := rand.New(rand.NewPCG(11, 12))
	var all []*Span
	for range 40 {
		all = append(all, mustNew(t, tb, uint32(rng.IntN(maxSlots)+1)))
	}
	for k, s := range all {
		s.Base = testBase + uintptr(k)*pageSize
		s.NPages = uint32(k + 1)
		for i := uintptr(0); i < uintptr(s.NElems); i++ {
			*s.Slot(i) = SlotAllocated
			s.MarkFreed(i)
		}
	}
	for k, s := range all {
		if s.Base != testBase+uintptr(k)*pageSize || s.NPages != uint32(k+1) || s.State() != StateInit {
			t.Fatalf("record %d header overwritten: base %#x pages %d state %v", s.ID(), s.Base, s.NPages, s.State())
		}
		for i, b := range slotStates(s) {
			want := uint8(SlotAllocated)
			if uint32(i) >= s.NElems {
				want = SlotPad
			}
			if b != want || s.FreedBit(uintptr(i)) != (want == SlotAllocated) {
				t.Fatalf("record %d slot %d: state %d freed %v", s.ID(), i, b, s.FreedBit(uintptr(i)))
			}
		}
	}
}

func TestReleaseReusesSameBucketOnly(t *testing.T) {
	tb := newTestTable(t, 64)
	a := mustNew(t, tb, 128) // bucket 2
	id, gen := a.ID(), a.Gen()
	tb.Release(a)
	if a.State() != statePooled {
		t.Errorf("released record in state %v, want pooled", a.State())
	}
	if got := tb.inUseRecords(); got != 0 {
		t.Errorf("inUseRecords after Release = %d, want 0", got)
	}

	// A different bucket does not get the record.
	for _, n := range []uint32{1, 64, 129, 1024} {
		if s := mustNew(t, tb, n); s.ID() == id {
			t.Errorf("New(%d) reused the released 128-slot record %d", n, id)
		}
	}
	// The same bucket does, with a new generation, for any count in it.
	for k, n := range []uint32{128, 65, 100} {
		s := mustNew(t, tb, n)
		if s.ID() != id {
			t.Fatalf("New(%d) = record %d, want the released record %d", n, s.ID(), id)
		}
		if s.Gen() <= gen {
			t.Fatalf("reuse %d: Gen = %d, not above the previous %d", k, s.Gen(), gen)
		}
		gen = s.Gen()
		if s.NSlots() != 128 || s.NElems != n {
			t.Fatalf("reused record: NSlots %d NElems %d, want 128 and %d", s.NSlots(), s.NElems, n)
		}
		tb.Release(s)
	}
}

func TestReleaseOrderIsLIFO(t *testing.T) {
	tb := newTestTable(t, 16)
	a, b, c := mustNew(t, tb, 10), mustNew(t, tb, 20), mustNew(t, tb, 30)
	tb.Release(a)
	tb.Release(c)
	tb.Release(b)
	for _, want := range []ID{b.ID(), c.ID(), a.ID()} {
		if got := mustNew(t, tb, 64).ID(); got != want {
			t.Fatalf("New after releases = record %d, want %d", got, want)
		}
	}
	if got := tb.inUseRecords(); got != 3 {
		t.Errorf("inUseRecords = %d, want 3", got)
	}
}

func TestNewResetsReusedRecord(t *testing.T) {
	tb := newTestTable(t, 16)
	for _, c := range []struct{ before, after uint32 }{
		{128, 70}, // fewer: old slots become padding
		{70, 128}, // more: old padding becomes free slots
		{1024, 1000},
		{1, 64},
		{64, 1},
	} {
		s := mustNew(t, tb, c.before)
		id := s.ID()
		// Dirty everything a span's life touches.
		for i := uintptr(0); i < uintptr(s.NElems); i++ {
			*s.Slot(i) = SlotAllocated
			s.MarkFreed(i)
		}
		s.SetOwner(42)
		s.List, s.next, s.prev = ListFull, 7, 9
		s.SetAllocated(11)
		s.Base, s.NPages = testBase+pageSize, 2
		tb.Publish(s, StateInUse)
		tb.Unpublish(s)
		tb.Release(s)

		r := mustNew(t, tb, c.after)
		if r.ID() != id {
			t.Fatalf("%d→%d: New gave record %d, want reuse of %d", c.before, c.after, r.ID(), id)
		}
		if r.State() != StateInit {
			t.Errorf("%d→%d: state %v, want init", c.before, c.after, r.State())
		}
		if r.HasPending() {
			t.Errorf("%d→%d: freed bits survived reuse", c.before, c.after)
		}
		if r.Owner() != OwnerCentral || r.List != ListNone || r.next != 0 || r.prev != 0 || r.Allocated() != 0 {
			t.Errorf("%d→%d: owner %d list %d next %d prev %d allocated %d survived reuse",
				c.before, c.after, r.Owner(), r.List, r.next, r.prev, r.Allocated())
		}
		for i, b := range slotStates(r) {
			want := uint8(SlotFree)
			if uint32(i) >= c.after {
				want = SlotPad
			}
			if b != want {
				t.Errorf("%d→%d: slot %d state %d, want %d", c.before, c.after, i, b, want)
				break
			}
		}
		if got := r.CountAllocated(); got != 0 {
			t.Errorf("%d→%d: CountAllocated = %d, want 0", c.before, c.after, got)
		}
		tb.Release(r)
	}
}

func TestReleaseOfPublishedSpanPanics(t *testing.T) {
	tb := newTestTable(t, 16)
	for _, st := range []State{StateInUse, StateLarge} {
		s := mustNew(t, tb, 1)
		s.Base, s.NPages = testBase+pageSize, 2
		tb.Publish(s, st)
		wantPanic(t, "Release of "+st.String(), func() { tb.Release(s) }, "Release of published", "span "+strconv.Itoa(int(s.ID())))
		if got := tb.inUseRecords(); got != 1 {
			t.Errorf("inUseRecords after refused Release = %d, want 1", got)
		}
		if tb.Lookup(s.Base) != s {
			t.Errorf("refused Release unpublished the span")
		}
		tb.Unpublish(s)
		tb.Release(s) // now fine
		if got := tb.inUseRecords(); got != 0 {
			t.Errorf("inUseRecords = %d, want 0", got)
		}
	}
	// A span never published (StateInit) may be released.
	tb.Release(mustNew(t, tb, 5))
}

func TestMetadataExhausted(t *testing.T) {
	for _, pages := range []uintptr{1, 2, 5} {
		tb := newTestTable(t, pages)
		var taken []*Span
		var err error
		for {
			var s *Span
			if s, err = tb.New(maxSlots); err != nil {
				break
			}
			taken = append(taken, s)
			if len(taken) > 1<<20 {
				t.Fatal("New never runs out")
			}
		}
		if !errors.Is(err, errMetadataExhausted) {
			t.Fatalf("pages=%d: New error %v, want errMetadataExhausted", pages, err)
		}
		// The worst case the record space is sized for: every heap page its
		// own span with a full record.
		if uintptr(len(taken)) < pages {
			t.Errorf("pages=%d: only %d full records before exhaustion", pages, len(taken))
		}
		if want := int((tb.recMap.Size() - recordUnit) / (headerSize + maxSlots)); len(taken) != want {
			t.Errorf("pages=%d: %d full records fit, want %d", pages, len(taken), want)
		}
		if got := tb.inUseRecords(); got != len(taken) {
			t.Errorf("pages=%d: inUseRecords = %d, want %d", pages, got, len(taken))
		}
		// Exhaustion is not sticky: a released record is taken again.
		last := taken[len(taken)-1]
		tb.Release(last)
		s, err := tb.New(1000)
		if err != nil || s.ID() != last.ID() {
			t.Errorf("pages=%d: New after Release = %v, %v; want record %d", pages, s, err, last.ID())
		}
		if _, err := tb.New(maxSlots); !errors.Is(err, errMetadataExhausted) {
			t.Errorf("pages=%d: New when full again: %v", pages, err)
		}
	}
}

func TestRecordSpaceCoversBucketChurn(t *testing.T) {
	// recordSpaceFactor's promise: full records for every page, all
	// released, and then a record of another bucket for every page.
	const pages = 8
	tb := newTestTable(t, pages)
	var first []*Span
	for range pages {
		first = append(first, mustNew(t, tb, maxSlots))
	}
	for _, s := range first {
		tb.Release(s)
	}
	for range pages {
		s := mustNew(t, tb, 1)
		for _, f := range first {
			if f.ID() == s.ID() {
				t.Fatalf("one-object span got a released 1024-slot record")
			}
		}
	}
}

func TestMetadataBytesGrows(t *testing.T) {
	tb := newTestTable(t, 64)
	base := tb.MetadataBytes(0)
	if got := tb.MetadataBytes(10) - base; got != 40 {
		t.Errorf("MetadataBytes(10)-MetadataBytes(0) = %d, want 40 (4 bytes a page)", got)
	}
	mustNew(t, tb, 1)
	if tb.MetadataBytes(0) <= base {
		t.Fatalf("first New: MetadataBytes stayed at %d", base)
	}
	prev := tb.MetadataBytes(0)
	for _, n := range []uint32{1, 64, 1024, 500, 65} {
		mustNew(t, tb, n)
		got := tb.MetadataBytes(0)
		want := uint64(headerSize + (uintptr(n)+63)/64*64)
		if got-prev != want {
			t.Errorf("New(%d): MetadataBytes grew by %d, want %d", n, got-prev, want)
		}
		prev = got
	}
	// Reuse takes no new space.
	s := mustNew(t, tb, 200)
	prev = tb.MetadataBytes(0)
	tb.Release(s)
	mustNew(t, tb, 256)
	if got := tb.MetadataBytes(0); got != prev {
		t.Errorf("reusing a record grew MetadataBytes from %d to %d", prev, got)
	}
}

func TestPublishLookup(t *testing.T) {
	// 1024 pages fill the page map's page exactly, so a Lookup that read
	// the entry one past the end would fault.
	const pages = 1024
	tb := newTestTable(t, pages)
	end := testBase + pages*pageSize

	a := mustNew(t, tb, 100)
	a.Base, a.NPages = testBase+5*pageSize, 3
	b := mustNew(t, tb, 1) // a large span right after a
	b.Base, b.NPages = a.End(), 4
	c := mustNew(t, tb, 1) // the very last page of the reservation
	c.Base, c.NPages = end-pageSize, 1
	d := mustNew(t, tb, 1) // the very first page
	d.Base, d.NPages = testBase, 1

	// Taken but not published: invisible.
	for _, s := range []*Span{a, b, c, d} {
		for _, addr := range []uintptr{s.Base, s.End() - 1} {
			if got := tb.Lookup(addr); got != nil {
				t.Errorf("Lookup(%#x) before Publish = span %d", addr, got.ID())
			}
		}
	}

	tb.Publish(a, StateInUse)
	tb.Publish(b, StateLarge)
	tb.Publish(c, StateInUse)
	tb.Publish(d, StateLarge)

	type probe struct {
		addr uintptr
		want *Span
	}
	probes := []probe{
		{0, nil},
		{testBase - 1, nil},
		{testBase - pageSize, nil},
		{testBase, d},
		{testBase + pageSize - 1, d},
		{testBase + pageSize, nil},
		{a.Base - 1, nil},
		{a.Base, a},
		{a.Base + pageSize - 1, a},
		{a.Base + pageSize, a},
		{a.Base + 2*pageSize + 17, a},
		{a.End() - 1, a},
		{a.End(), b}, // one past a is b's first byte
		{b.End() - 1, b},
		{b.End(), nil},
		{c.Base - 1, nil},
		{c.Base, c},
		{end - 1, c},
		{end, nil},
		{end + pageSize, nil},
		{testBase + (1<<32)*pageSize, nil},
		{^uintptr(0), nil},
	}
	for _, p := range probes {
		if got := tb.Lookup(p.addr); got != p.want {
			t.Errorf("Lookup(base%+#x) = %s, want %s", int64(p.addr-testBase), describeOrNil(got), describeOrNil(p.want))
		}
	}
	// Every byte offset of a, at page granularity plus each boundary.
	for off := uintptr(0); off < uintptr(a.NPages)*pageSize; off += 251 {
		if got := tb.Lookup(a.Base + off); got != a {
			t.Fatalf("Lookup(a.Base+%d) = %s", off, describeOrNil(got))
		}
	}
	for p := uintptr(0); p < pages; p++ {
		var want ID
		for _, s := range []*Span{a, b, c, d} {
			if testBase+p*pageSize >= s.Base && testBase+p*pageSize < s.End() {
				want = s.ID()
			}
		}
		if got := tb.PageSpan(p); got != want {
			t.Errorf("PageSpan(%d) = %d, want %d", p, got, want)
		}
	}

	// Unpublish clears a's entries and leaves its neighbours alone.
	tb.Unpublish(a)
	if a.State() != StateDead {
		t.Errorf("Unpublish left state %v", a.State())
	}
	for p := uintptr(5); p < 8; p++ {
		if id := tb.PageSpan(p); id != 0 {
			t.Errorf("after Unpublish, page %d still maps to %d", p, id)
		}
	}
	for _, addr := range []uintptr{a.Base, a.End() - 1} {
		if got := tb.Lookup(addr); got != nil {
			t.Errorf("Lookup(%#x) after Unpublish = %s", addr, describeOrNil(got))
		}
	}
	if tb.Lookup(b.Base) != b || tb.Lookup(a.Base-1) != nil {
		t.Errorf("Unpublish of a disturbed its neighbours")
	}

	// Entries written but state StateInit (mid-publication): invisible.
	e := mustNew(t, tb, 8)
	e.Base, e.NPages = testBase+20*pageSize, 2
	tb.Publish(e, StateInit)
	if tb.PageSpan(20) != e.ID() || tb.PageSpan(21) != e.ID() {
		t.Errorf("Publish(StateInit) did not write the entries")
	}
	if got := tb.Lookup(e.Base); got != nil {
		t.Errorf("Lookup of a StateInit span = %s, want nil", describeOrNil(got))
	}
	// ... and so is a dead one whose entries are still there.
	e.setState(StateInUse)
	if tb.Lookup(e.Base+pageSize) != e {
		t.Errorf("Lookup after setting InUse failed")
	}
	e.setState(StateDead)
	if got := tb.Lookup(e.Base); got != nil {
		t.Errorf("Lookup of a dead span with entries = %s, want nil", describeOrNil(got))
	}
}

func describeOrNil(s *Span) string {
	if s == nil {
		return "nil"
	}
	return s.Describe()
}

func TestInReservation(t *testing.T) {
	const pages = 10
	tb := newTestTable(t, pages)
	for _, c := range []struct {
		addr uintptr
		want bool
	}{
		{0, false},
		{testBase - 1, false},
		{testBase, true},
		{testBase + pages*pageSize - 1, true},
		{testBase + pages*pageSize, false},
		{^uintptr(0), false},
	} {
		if got := tb.InReservation(c.addr); got != c.want {
			t.Errorf("InReservation(%#x) = %v, want %v", c.addr, got, c.want)
		}
	}
}

// TestLookupDuringPublish checks the publication order under concurrency:
// a Lookup that finds a span finds one that is published and contains the
// address, whatever the publisher is doing.
func TestLookupDuringPublish(t *testing.T) {
	const pages = 64
	tb := newTestTable(t, pages)
	var all []*Span
	for k := uintptr(0); k < pages/4; k++ {
		s := mustNew(t, tb, 16)
		s.Base, s.NPages = testBase+4*k*pageSize, uint32(1+k%4)
		all = append(all, s)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var bad atomic.Int64
	for r := range 2 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r), 99))
			for !stop.Load() {
				addr := testBase + uintptr(rng.IntN(pages*pageSize))
				s := tb.Lookup(addr)
				if s == nil {
					continue
				}
				if st := s.State(); st != StateInUse && st != StateLarge && st != StateDead {
					bad.Add(1)
				}
				if addr < s.Base || addr >= s.End() {
					bad.Add(1)
				}
			}
		})
	}
	rng := rand.New(rand.NewPCG(13, 14))
	for range 20000 {
		s := all[rng.IntN(len(all))]
		if s.State() == StateDead || s.State() == StateInit {
			tb.Publish(s, StateInUse)
		} else {
			tb.Unpublish(s)
		}
	}
	stop.Store(true)
	wg.Wait()
	if n := bad.Load(); n != 0 {
		t.Errorf("%d lookups returned a span not containing the address or in a bad state", n)
	}
}

func TestClose(t *testing.T) {
	fi := mmap.NewFaultInjector(nil)
	tb, err := NewTable(testBase, 128, fi)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Calls(mmap.OpReserve); got != 2 {
		t.Errorf("NewTable made %d mappings, want 2", got)
	}
	mustNew(t, tb, 64)
	if err := tb.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := fi.Calls(mmap.OpRelease); got != 2 {
		t.Errorf("Close made %d munmaps, want 2", got)
	}
	err = tb.Close()
	if !errors.Is(err, mmap.ErrReleased) {
		t.Fatalf("second Close = %v, want an error wrapping mmap.ErrReleased", err)
	}
	if got := fi.Calls(mmap.OpRelease); got != 2 {
		t.Errorf("second Close reached the kernel: %d munmaps", got)
	}
}

func TestCloseReportsUnmapFailure(t *testing.T) {
	for n := 1; n <= 2; n++ {
		fi := mmap.NewFaultInjector(nil)
		tb, err := NewTable(testBase, 16, fi)
		if err != nil {
			t.Fatal(err)
		}
		fi.FailNth(mmap.OpRelease, n)
		if err := tb.Close(); !errors.Is(err, mmap.ErrInjected) {
			t.Errorf("Close with munmap %d failing = %v, want an error wrapping mmap.ErrInjected", n, err)
		}
		// The failed mapping stays mapped and a retry releases it alone,
		// succeeding; a Close after that reaches no kernel.
		if err := tb.Close(); err != nil {
			t.Errorf("Close retry = %v, want nil", err)
		}
		if got := fi.Calls(mmap.OpRelease); got != 3 {
			t.Errorf("munmaps after a failed Close and a retry = %d, want 3", got)
		}
		if err := tb.Close(); !errors.Is(err, mmap.ErrReleased) {
			t.Errorf("Close after a successful retry = %v, want ErrReleased", err)
		}
		if got := fi.Calls(mmap.OpRelease); got != 3 {
			t.Errorf("Close after success reached the kernel: %d munmaps", got)
		}
	}
}

func TestNewTableFailureReleasesMappings(t *testing.T) {
	for _, c := range []struct {
		name        string
		op          mmap.Op
		n           int
		wantRelease int
	}{
		{"page map reserve", mmap.OpReserve, 1, 0},
		{"records reserve", mmap.OpReserve, 2, 1},
	} {
		fi := mmap.NewFaultInjector(nil)
		fi.FailNth(c.op, c.n)
		tb, err := NewTable(testBase, 16, fi)
		if err == nil {
			tb.Close()
			t.Errorf("%s fails: NewTable succeeded", c.name)
			continue
		}
		if tb != nil {
			t.Errorf("%s fails: NewTable returned a table with its error", c.name)
		}
		if !errors.Is(err, mmap.ErrInjected) {
			t.Errorf("%s fails: error %v does not wrap mmap.ErrInjected", c.name, err)
		}
		if got := fi.Calls(mmap.OpRelease); got != c.wantRelease {
			t.Errorf("%s fails: %d munmaps, want %d (every successful reservation undone)", c.name, got, c.wantRelease)
		}
	}
}

func TestUnpublishMarksFreedStart(t *testing.T) {
	const pages = 32
	tb := newTestTable(t, pages)
	a := mustNew(t, tb, 1)
	a.Base, a.NPages = testBase+4*pageSize, 3
	for _, addr := range []uintptr{a.Base, testBase, testBase - pageSize, testBase + pages*pageSize} {
		if tb.FreedStart(addr) {
			t.Errorf("FreedStart(%#x) on a fresh table", addr)
		}
	}
	tb.Publish(a, StateLarge)
	if tb.FreedStart(a.Base) {
		t.Errorf("FreedStart of a published span's base")
	}
	tb.Unpublish(a)
	if !tb.FreedStart(a.Base) {
		t.Errorf("FreedStart(base) false right after Unpublish")
	}
	for _, addr := range []uintptr{a.Base + 1, a.Base + 8, a.Base + pageSize, a.Base + 2*pageSize, a.Base - pageSize, a.End()} {
		if tb.FreedStart(addr) {
			t.Errorf("FreedStart(base%+d) true; only the first byte was a span start", int64(addr-a.Base))
		}
	}
	// The mark reads as no span for Lookup and PageSpan.
	for p := uintptr(4); p < 7; p++ {
		if got := tb.PageSpan(p); got != 0 {
			t.Errorf("PageSpan(%d) after Unpublish = %d, want 0", p, got)
		}
	}
	if got := tb.Lookup(a.Base); got != nil {
		t.Errorf("Lookup of a freed span start = %s", describeOrNil(got))
	}
	// Republishing the page (here by a span that starts one page earlier)
	// clears the mark.
	b := mustNew(t, tb, 1)
	b.Base, b.NPages = a.Base-pageSize, 2
	tb.Publish(b, StateLarge)
	if tb.FreedStart(a.Base) {
		t.Errorf("FreedStart still true after the page was published again")
	}
	if tb.Lookup(a.Base) != b {
		t.Errorf("Lookup(a.Base) = %s, want span b", describeOrNil(tb.Lookup(a.Base)))
	}
}

func TestDoubleReleasePanics(t *testing.T) {
	tb, err := NewTable(1<<40, 64, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	s, err := tb.New(64)
	if err != nil {
		t.Fatal(err)
	}
	tb.Release(s)
	func() {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "already released") {
				t.Fatalf("second Release: recovered %v, want a panic naming the double release", r)
			}
		}()
		tb.Release(s)
	}()
	a, _ := tb.New(64)
	b, _ := tb.New(64)
	if a == b {
		t.Fatal("the pool handed out one record twice")
	}
}

// A heap large enough that the record mapping reaches the 32-bit ID cap
// (from about 910 GiB): the capped size must still be whole OS pages, or
// the reservation fails with mmap.ErrMisaligned.
func TestNewTableAtIDCap(t *testing.T) {
	const heapPages = (1 << 40) / pageSize // 1 TiB
	tb, err := NewTable(testBase, heapPages, nil)
	if err != nil {
		t.Fatalf("NewTable for a 1 TiB heap: %v", err)
	}
	defer tb.Close()
	if n := tb.recMap.Size(); n%mmap.PageSize() != 0 || n/recordUnit >= uintptr(freedMark) {
		t.Fatalf("record mapping of %d bytes: not whole pages or past the ID range", n)
	}
	// The last record the cap allows is usable: IDs stay below freedMark.
	s := mustNew(t, tb, maxSlots)
	if s.ID() == 0 || uint32(s.ID()) == freedMark {
		t.Fatalf("first record has ID %d", s.ID())
	}
}
