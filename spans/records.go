package spans

import (
	"fmt"

	"github.com/offheap/offheap/mmap"
)

// Handing pooled records back to the kernel.
//
// After a mass delete most spans are freed and their records sit in the
// pool, resident: at 3 M keys of a Redis-like store, 49 MiB of records for
// a heap that had shrunk to 104 MiB in use. ReleasePooled gives back the
// OS pages that only pooled records overlap, with madvise(MADV_DONTNEED);
// a record taken from the pool later faults its page back in as zeros and
// New sets every field, so nothing of a pooled record's contents is relied
// on. That is why the free lists are ID stacks on the Go heap (a few bytes
// per pooled record, no pointers) and not links through the records, and
// why generations come from one counter of the table.
//
// The Table counts, for each OS page below the bump pointer, the records
// out of the pool (taken by New, not yet Released) that overlap it; a
// page whose count is zero holds only pooled records and padding and may
// go. The madvise runs with the pool lock dropped (no system call under a
// lock): the pages are marked releasing first, and New, popping a pooled
// record that overlaps a releasing page, sets it aside (held) and pops
// another; the release returns the held records to their stacks when the
// madvise is done. A record's pages cannot become releasing while it is
// out of the pool (its count keeps them above zero), and pages at or past
// the bump pointer are never candidates, so the bump allocator and the
// release never meet.

// Page states of recPage.state.
const (
	recResident  = iota // committed, contents intact (or never touched)
	recReleasing        // a ReleasePooled is madvising it, pool lock dropped
	recReleased         // given back; reads as zeros until touched
)

// recPage is the pool's bookkeeping for one OS page of the record mapping.
type recPage struct {
	live  uint16 // records out of the pool that overlap the page
	state uint8
}

// heldRecord is a pooled record New set aside during a release.
type heldRecord struct {
	id     ID
	bucket uint8
}

// recordSize is the size of a record of bucket b.
func recordSize(b uint8) uintptr { return headerSize + uintptr(b)*wordBits }

// recPages returns the OS pages [first, last] that the record id of size
// bytes overlaps.
func recPages(id ID, size uintptr) (first, last uintptr) {
	off := uintptr(id) * recordUnit
	ps := mmap.PageSize()
	return off / ps, (off + size - 1) / ps
}

// growPages extends pg to cover every OS page below next. Caller holds mu.
func (t *Table) growPages() {
	want := (t.next + mmap.PageSize() - 1) / mmap.PageSize()
	for uintptr(len(t.pg)) < want {
		t.pg = append(t.pg, recPage{})
		t.idle++ // until take counts the record that reached it
	}
}

// popFree takes a pooled record of bucket b off its stack, or returns 0 if
// there is none it may use; records overlapping a page being released are
// set aside in held. Caller holds mu.
func (t *Table) popFree(b uintptr) ID {
	for n := len(t.free[b]); n > 0; n = len(t.free[b]) {
		id := t.free[b][n-1]
		t.free[b] = t.free[b][:n-1]
		if !t.releasing(id, recordSize(uint8(b))) {
			return id
		}
		t.held = append(t.held, heldRecord{id, uint8(b)})
	}
	return 0
}

// releasing reports whether a page the record overlaps is being released.
// Caller holds mu.
func (t *Table) releasing(id ID, size uintptr) bool {
	first, last := recPages(id, size)
	for p := first; p <= last; p++ {
		if t.pg[p].state == recReleasing {
			return true
		}
	}
	return false
}

// take counts record id, leaving the pool, on the pages it overlaps; a
// released page is resident again from here (the record's set-up touches
// it). Caller holds mu.
func (t *Table) take(id ID, size uintptr) {
	first, last := recPages(id, size)
	for p := first; p <= last; p++ {
		pg := &t.pg[p]
		switch {
		case pg.state == recReleased:
			pg.state = recResident
			t.released.Add(-mmap.PageSize())
		case pg.live == 0:
			t.idle--
		}
		pg.live++
	}
}

// drop uncounts record id, back in the pool, and reports true. A page of
// a record out of the pool is never released or being released and counts
// it; if one does not, the record was already pooled (a double Release,
// which would put it on its stack twice): drop changes nothing and
// returns that page and false. Caller holds mu.
func (t *Table) drop(id ID, size uintptr) (uintptr, bool) {
	first, last := recPages(id, size)
	for p := first; p <= last; p++ {
		if pg := t.pg[p]; pg.live == 0 || pg.state != recResident {
			return p, false
		}
	}
	for p := first; p <= last; p++ {
		if t.pg[p].live--; t.pg[p].live == 0 {
			t.idle++
		}
	}
	return 0, true
}

// ReleasePooled gives back to the kernel up to max bytes of OS pages of
// the record mapping that only pooled records overlap, and returns how
// many bytes it released. The madvise runs without the pool lock; if it
// fails, those pages stay resident and counted so, and the error wraps
// the mmap error. Safe for concurrent use with New, Release and itself
// (concurrent calls run one after the other).
func (t *Table) ReleasePooled(max uintptr) (uintptr, error) {
	// One release at a time: the records set aside for one go back to
	// their stacks when it ends, and must not while another's pages are
	// still being released.
	t.relMu.Lock()
	defer t.relMu.Unlock()
	ps := mmap.PageSize()
	type run struct{ first, n uintptr }
	var runs []run
	var total uintptr
	t.mu.Lock()
	// Only pages wholly below the bump pointer: the page it points into
	// is where the next new record goes. If no other page is idle, there
	// is nothing to scan for (the common case; a scan is O(pages) under
	// the pool lock, 12 k pages for a heap that peaked at 1.6 GiB).
	end := t.next / ps
	idle := t.idle
	if end < uintptr(len(t.pg)) && t.pg[end].live == 0 && t.pg[end].state == recResident {
		idle--
	}
	if idle == 0 {
		t.mu.Unlock()
		return 0, nil
	}
	for p := uintptr(0); p < end && total < max; p++ {
		pg := &t.pg[p]
		if pg.live != 0 || pg.state != recResident {
			continue
		}
		pg.state = recReleasing
		t.idle--
		total += ps
		if k := len(runs) - 1; k >= 0 && runs[k].first+runs[k].n == p {
			runs[k].n++
		} else {
			runs = append(runs, run{p, 1})
		}
	}
	t.mu.Unlock()
	if len(runs) == 0 {
		return 0, nil
	}

	var err error
	failed := make([]bool, len(runs))
	for i, r := range runs {
		if e := t.recMap.Decommit(t.recMap.Base()+r.first*ps, r.n*ps, mmap.DecommitDontNeed); e != nil {
			failed[i] = true
			if err == nil {
				err = fmt.Errorf("spans: releasing pooled span records: %w", e)
			}
		}
	}

	var released uintptr
	t.mu.Lock()
	for i, r := range runs {
		st := uint8(recReleased)
		if failed[i] {
			// The madvise may have dropped some of the pages: zeros are
			// what a released page reads as, so the pooled records there
			// are no worse off; only the accounting stays conservative.
			st = recResident
			t.idle += int(r.n)
		} else {
			released += r.n * ps
		}
		for p := r.first; p < r.first+r.n; p++ {
			t.pg[p].state = st
		}
	}
	t.released.Add(released)
	for _, h := range t.held {
		t.free[h.bucket] = append(t.free[h.bucket], h.id)
	}
	t.held = t.held[:0]
	t.mu.Unlock()
	return released, err
}

// ReleasedRecordBytes is the bytes of record pages ReleasePooled gave
// back and no record has touched since.
func (t *Table) ReleasedRecordBytes() uintptr { return t.released.Load() }
