package container

import (
	"fmt"
	"unsafe"

	"github.com/offheap/offheap/internal/addr"
)

// Active defragmentation: moving entries out of sparse spans.
//
// After many deletes a map's surviving entries are scattered over spans
// that each keep a few of them, so the Heap can free none of those spans
// (arena.Heap.DefragHint explains). Defrag walks the map's buckets with a
// cursor that persists between calls and, for each entry whose
// DefragHint is true, allocates a new entry of the same size (it comes
// from a span a cache is filling), copies it, puts it in the old one's
// place in its chain and frees the old one. Repeated calls empty the
// sparse spans, which the Heap then frees and its scavenger returns to the
// kernel.
//
// Each call looks at no more than maxEntries entries and steps over no more
// than maxEntries×defragBucketsPerEntry empty buckets, so it can run under
// the lock that serialises the map's writers without holding it long. A
// chain cut by the bound is resumed where it stopped (cursor.skip counts
// the entries of the bucket already looked at).
//
// The cursor walks the table being drained by a resize, then the one
// inserts go to, so entries in both are visited. A resize step or a resize
// starting or finishing between calls changes which table the cursor
// walks: a sweep may then look at some entries twice or miss some; it is
// only an optimisation, and the next sweep catches them. Only the entries
// move, not the bucket segments: a segment is 32 KiB, a span of its own.

// defragBucketsPerEntry bounds the buckets one Defrag call may step over
// per entry it may look at. Reading an empty bucket is one load where
// looking at an entry is a span lookup and possibly an allocation and a
// copy, so a few empty buckets cost less than one entry; 8 lets a call
// cross a table left at load 1/8 (shrinkDiv) without its entry budget
// going unused, and still bounds a call on an empty table.
const defragBucketsPerEntry = 8

// defragCursor is where the next Defrag call resumes. Written only by
// Defrag, which is a writer (the map's owner serialises it like Set).
type defragCursor struct {
	tab    int    // 0: tab[0], 1: tab[1] (only while resizing)
	bucket uint64 // bucket index in that table
	skip   int    // entries of that bucket already looked at
	sweeps uint64 // completed sweeps over both tables
	moved  uint64 // entries moved, all calls
}

// defrag runs one bounded step; size returns the byte size of the entry
// at an address (what it was allocated with).
func (c *core) defrag(maxEntries int, size func(e uintptr) int) (int, error) {
	if err := c.writable("Defrag"); err != nil {
		return 0, err
	}
	if maxEntries <= 0 {
		return 0, fmt.Errorf("%w: Defrag of %d entries", ErrInvalidArgument, maxEntries)
	}
	cur := &c.dfCur
	looked, visits, moved := 0, 0, 0
	maxVisits := maxEntries * defragBucketsPerEntry
	defer func() { cur.moved += uint64(moved) }()
	for looked < maxEntries && visits < maxVisits {
		if cur.tab >= c.tables() {
			*cur = defragCursor{sweeps: cur.sweeps + 1, moved: cur.moved}
			break
		}
		t := &c.tab[cur.tab]
		if cur.bucket >= t.nbuckets {
			cur.tab++
			cur.bucket, cur.skip = 0, 0
			continue
		}
		visits++
		j := cur.bucket >> t.shift
		seg := *t.segAt(j)
		if seg == 0 { // never held an entry: skip the segment whole
			cur.bucket = (j + 1) << t.shift
			cur.skip = 0
			continue
		}
		p := (*uintptr)(addr.Pointer(seg + uintptr(cur.bucket&(1<<t.shift-1))*wordBytes))
		k := 0
		for ; *p != 0 && k < cur.skip; k++ {
			p = &linkAt(*p).next
		}
		for *p != 0 && looked < maxEntries {
			looked++
			k++
			ea := *p
			if c.h.DefragHint(addr.Pointer(ea)) {
				n := size(ea)
				q, err := c.h.Alloc(n)
				if err != nil {
					cur.skip = k - 1
					return moved, fmt.Errorf("container: Defrag: entry of %d bytes: %w", n, err)
				}
				copy(unsafe.Slice((*byte)(q), n), unsafe.Slice((*byte)(addr.Pointer(ea)), n))
				*p = uintptr(q) // the copy keeps the next link
				mustFree(c.h, ea, "entry")
				moved++
			}
			p = &linkAt(*p).next
		}
		if *p != 0 { // the budget ran out inside this chain
			cur.skip = k
			break
		}
		cur.bucket++
		cur.skip = 0
	}
	return moved, nil
}

// Defrag moves entries out of sparse spans of the Heap so that those spans
// can empty and be freed: one bounded step of an incremental sweep over
// the map, looking at no more than maxEntries entries (and stepping over
// no more than 8×maxEntries empty buckets). It returns how many entries it
// moved. Repeated calls sweep the whole map; MapStats.DefragSweeps counts
// completed sweeps, so a caller can stop once a sweep has passed with
// nothing more to move. See arena.Heap.DefragHint for which entries move.
//
// Defrag is a writer, like Set: the caller serialises it with every other
// call on the map, and a slice from Get's callers' View or Range must not
// be in use (a moved entry's old memory is freed); called from inside
// Range it panics. It returns ErrClosed after Close, ErrInvalidArgument
// for maxEntries <= 0, and the Heap's error (wrapped) if a new entry
// cannot be had: the entry it was moving stays where it was, the map is
// unchanged apart from the entries already moved, and the next call
// resumes there.
func (m *BytesMap) Defrag(maxEntries int) (moved int, err error) {
	return m.c.defrag(maxEntries, func(e uintptr) int {
		b := bytesEntryAt(e)
		return bytesHeader + int(b.klen) + int(b.vlen)
	})
}

// Defrag is BytesMap.Defrag for a Map: entries are all one size.
func (m *Map[K, V]) Defrag(maxEntries int) (moved int, err error) {
	size := int(unsafe.Sizeof(mapEntry[K, V]{}))
	return m.c.defrag(maxEntries, func(uintptr) int { return size })
}
