package spans

import (
	"errors"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/offheap/offheap/mmap"
)

// residentPages is mincore's count of resident pages in [addr, addr+n).
func residentPages(t testing.TB, addr, n uintptr) int {
	t.Helper()
	c, err := mmap.ResidentPages(addr, n)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fillSlots writes a pattern of the record's ID into its slot bytes, and
// checkSlots finds it again: a record whose memory was released while it
// was out of the pool would read back zeros.
func fillSlots(s *Span) {
	for i := uintptr(0); i < uintptr(s.NSlots()); i++ {
		*s.Slot(i) = byte(uint32(s.ID())+uint32(i)) | 1
	}
}

func checkSlots(t testing.TB, s *Span) {
	t.Helper()
	for i := uintptr(0); i < uintptr(s.NSlots()); i++ {
		if got, want := *s.Slot(i), byte(uint32(s.ID())+uint32(i))|1; got != want {
			t.Fatalf("record %d (gen %d) slot %d: %#x, want %#x: its memory was lost", s.ID(), s.Gen(), i, got, want)
		}
	}
}

// TestReleasePooledRecords: after 90 % of many records are pooled at
// random, ReleasePooled gives back the OS pages only pooled records
// overlap (mincore shows them gone), leaves every record out of the pool
// intact, and records taken from the pool afterwards come back fully set
// up, with generations never seen before.
func TestReleasePooledRecords(t *testing.T) {
	tb := newTestTable(t, 1<<16)
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 20000
	live := make([]*Span, 0, n)
	for range n {
		s := mustNew(t, tb, uint32(1+rng.IntN(300)))
		fillSlots(s)
		live = append(live, s)
	}
	base, used := tb.recMap.Base(), tb.next
	before := residentPages(t, base, used)
	gens := map[uint32]bool{}
	rng.Shuffle(len(live), func(i, j int) { live[i], live[j] = live[j], live[i] })
	for _, s := range live[n/10:] {
		gens[s.Gen()] = true
		tb.Release(s)
	}
	live = live[:n/10]

	got, err := tb.ReleasePooled(^uintptr(0))
	if err != nil {
		t.Fatal(err)
	}
	after := residentPages(t, base, used)
	ps := mmap.PageSize()
	t.Logf("%d records, %d pooled: %d of %d pages resident before, %d after; released %d bytes",
		n, n-len(live), before, (used+ps-1)/ps, after, got)
	if got == 0 || uintptr(before-after)*ps < got || tb.ReleasedRecordBytes() != got {
		t.Fatalf("released %d bytes (counter %d), but resident pages went from %d to %d",
			got, tb.ReleasedRecordBytes(), before, after)
	}
	// With 10 % of records left at random, about a third of the pages hold
	// only pooled records (small records, 16 to a page).
	if got < used/5 {
		t.Errorf("released %d of %d bytes of records", got, used)
	}
	if again, err := tb.ReleasePooled(^uintptr(0)); again != 0 || err != nil {
		t.Errorf("second ReleasePooled = %d, %v; want nothing left to release", again, err)
	}
	for _, s := range live {
		checkSlots(t, s)
	}

	// Reuse: every pooled record can be taken again, set up in full.
	for i := range n - len(live) {
		nelems := uint32(1 + i%300)
		s := mustNew(t, tb, nelems)
		if s.State() != StateInit || s.NElems != nelems || s.Owner() != OwnerCentral ||
			s.Pending() != 0 || s.Allocated() != 0 || s.NSlots() != uint32((nelems+63)/64*64) {
			t.Fatalf("reused record %d: %s, NSlots %d, pending %d", s.ID(), s.Describe(), s.NSlots(), s.Pending())
		}
		if gens[s.Gen()] {
			t.Fatalf("record %d reused with generation %d, already handed out", s.ID(), s.Gen())
		}
		for k := uintptr(0); k < uintptr(s.NSlots()); k++ {
			want := uint8(SlotFree)
			if k >= uintptr(nelems) {
				want = SlotPad
			}
			if *s.Slot(k) != want || s.FreedBit(k) {
				t.Fatalf("reused record %d slot %d: state %d", s.ID(), k, *s.Slot(k))
			}
		}
		fillSlots(s)
		live = append(live, s)
	}
	if r := tb.ReleasedRecordBytes(); r > got {
		t.Errorf("after reuse %d bytes still counted released, more than the %d released", r, got)
	}
	for _, s := range live {
		checkSlots(t, s)
	}
}

// TestReleasePooledMax: ReleasePooled stops at its byte budget, and a
// later call goes on where pages are left.
func TestReleasePooledMax(t *testing.T) {
	tb := newTestTable(t, 1<<14)
	newPooled(t, tb, 2000, 0)
	ps := mmap.PageSize()
	got, err := tb.ReleasePooled(3 * ps)
	if err != nil || got != 3*ps {
		t.Fatalf("ReleasePooled(3 pages) = %d, %v", got, err)
	}
	rest, err := tb.ReleasePooled(^uintptr(0))
	if err != nil || rest == 0 || tb.ReleasedRecordBytes() != got+rest {
		t.Fatalf("then ReleasePooled(all) = %d, %v; counter %d", rest, err, tb.ReleasedRecordBytes())
	}
}

// TestReleasePooledFault: a failed madvise releases nothing, loses no
// record, and says so; a retry succeeds.
func TestReleasePooledFault(t *testing.T) {
	fi := mmap.NewFaultInjector(nil)
	tb, err := NewTable(testBase, 1<<12, fi)
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	all := newPooled(t, tb, 500, 100)
	fi.FailNth(mmap.OpDecommit, 1)
	got, err := tb.ReleasePooled(^uintptr(0))
	if !errors.Is(err, mmap.ErrInjected) || tb.ReleasedRecordBytes() > got {
		t.Fatalf("ReleasePooled with a failing madvise = %d, %v; counter %d", got, err, tb.ReleasedRecordBytes())
	}
	for range 400 {
		s := mustNew(t, tb, 64)
		fillSlots(s)
		all = append(all, s)
	}
	for _, s := range all[500:] {
		checkSlots(t, s)
		tb.Release(s)
	}
	if got, err := tb.ReleasePooled(^uintptr(0)); err != nil || got == 0 {
		t.Fatalf("retry: %d, %v", got, err)
	}
}

// TestReleasePooledDoubleRelease: a record released twice after its page
// was given back is still caught (its page holds no record out of the
// pool), and the pool is unchanged.
func TestReleasePooledDoubleRelease(t *testing.T) {
	tb := newTestTable(t, 1<<12)
	all := newPooled(t, tb, 100, 0)
	if got, err := tb.ReleasePooled(^uintptr(0)); err != nil || got == 0 {
		t.Fatalf("ReleasePooled = %d, %v", got, err)
	}
	s := all[0]
	if s.State() != StateDead {
		t.Skipf("released page reads state %v, not zero (MADV_DONTNEED not honoured?)", s.State())
	}
	wantPanic(t, "double Release after ReleasePooled", func() { tb.Release(s) }, "released twice")
	if got := len(tb.free[1]); got != 100 { // 64 slots: bucket 1 (the record reads zeros now)
		t.Errorf("bucket stack holds %d records, want 100", got)
	}
}

// TestReleasePooledConcurrent: goroutines take, fill, check and pool
// records while others release pooled pages over and over; no record out
// of the pool ever loses its contents (run it under -race as well).
func TestReleasePooledConcurrent(t *testing.T) {
	tb := newTestTable(t, 1<<16)
	const workers, rounds = 4, 300
	stop := make(chan struct{})
	var rel sync.WaitGroup
	for range 2 {
		rel.Add(1)
		go func() {
			defer rel.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := tb.ReleasePooled(64 * mmap.PageSize()); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			var mine []*Span
			for range rounds {
				for range 1 + rng.IntN(64) {
					s, err := tb.New(uint32(1 + rng.IntN(200)))
					if err != nil {
						t.Error(err)
						return
					}
					fillSlots(s)
					mine = append(mine, s)
				}
				rng.Shuffle(len(mine), func(i, j int) { mine[i], mine[j] = mine[j], mine[i] })
				k := rng.IntN(len(mine) + 1)
				for _, s := range mine[k:] {
					checkSlots(t, s)
					tb.Release(s)
				}
				mine = mine[:k]
			}
			for _, s := range mine {
				checkSlots(t, s)
				tb.Release(s)
			}
		}()
	}
	wg.Wait()
	close(stop)
	rel.Wait()
	if n := tb.inUseRecords(); n != 0 {
		t.Errorf("%d records still out of the pool", n)
	}
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if len(tb.held) != 0 {
		t.Errorf("%d records still held aside", len(tb.held))
	}
	idle := 0
	for p, pg := range tb.pg {
		if pg.live != 0 || pg.state == recReleasing {
			t.Fatalf("page %d: %d records counted out of the pool, state %d", p, pg.live, pg.state)
		}
		if pg.state == recResident {
			idle++
		}
	}
	if idle != tb.idle {
		t.Errorf("%d resident pages hold no record out of the pool; idle counter says %d", idle, tb.idle)
	}
}

// TestReleasePooledSkipsBumpPage: the page the bump pointer is in is never
// released (the next new record goes there), even with all its records
// pooled; it stays counted idle, and its records are reused intact.
func TestReleasePooledSkipsBumpPage(t *testing.T) {
	tb := newTestTable(t, 1<<10)
	s := mustNew(t, tb, 64)
	tb.Release(s)
	if tb.next%mmap.PageSize() == 0 {
		t.Skip("the first record ends on a page boundary")
	}
	if got, err := tb.ReleasePooled(^uintptr(0)); got != 0 || err != nil {
		t.Fatalf("ReleasePooled = %d, %v; want nothing: the only idle page is the bump pointer's", got, err)
	}
	if tb.idle != 1 {
		t.Errorf("idle pages %d, want 1", tb.idle)
	}
	s = mustNew(t, tb, 64) // the same record again, its page intact
	fillSlots(s)
	checkSlots(t, s)
	tb.Release(s)
}
