package container

import (
	"fmt"
	"hash/maphash"
	"math/bits"
	"sync/atomic"

	"github.com/offheap/offheap/arena"
	"github.com/offheap/offheap/internal/addr"
)

// Tunables of the table. doc.go explains the design they belong to.
const (
	// segShift: a table is cut into segments of 1<<segShift buckets
	// (4096 buckets of 8 bytes = 32 KiB, the heap's largest small size
	// class). A segment is the unit of allocation and freeing, so no
	// operation ever allocates, clears or frees more than 32 KiB of
	// buckets at once, however big the table; and being a small object it
	// comes from a size-class span without a page-allocator round trip.
	segShift = 12

	// minBuckets is the smallest table: one 64-byte segment. Tables never
	// shrink below it.
	minBuckets = 8

	// maxLoad: a table grows (doubles) when it holds more entries than
	// buckets, so chains average under one entry per bucket. Chains, not
	// open addressing, because an entry can then move between tables one
	// at a time without disturbing the probe sequence of the others.
	maxLoad = 1

	// shrinkDiv: a table shrinks when it holds fewer than 1/shrinkDiv
	// entries per bucket, to twice the entries (load 1/2). The gap between
	// 1/8 and 1 keeps a map whose size wobbles from resizing back and forth.
	shrinkDiv = 8

	// moveEntries and visitBuckets bound the work of one operation while a
	// table resizes: at most moveEntries entries are moved from the old
	// table to the new one, and at most visitBuckets empty old buckets (or
	// unallocated old segments) are stepped over. Growth starts at load 1
	// into a table twice as big, so at least n inserts separate it from the
	// next growth trigger, and draining n entries over n buckets takes at
	// most n/moveEntries + n/visitBuckets + 1 operations: the old table is
	// always empty well before the new one needs to grow.
	moveEntries  = 16
	visitBuckets = 128

	// maxBuckets caps the table (2^40 buckets would be an 8 TiB table); a
	// map this big just stops growing and its chains get longer.
	maxBuckets = 1 << 40
)

// wordBytes is the size of a bucket slot and of a directory slot.
const wordBytes = 8

// link is the header every entry starts with. Entries, buckets and
// directories are off-heap, so links are plain addresses (uintptr), never
// Go pointers: the GC neither scans them nor runs write barriers on them.
type link struct {
	next uintptr // next entry of the chain, 0 at its end
	hash uint64  // the key's full hash: resizing moves an entry without rehashing its key, and lookups compare it before the key
}

func linkAt(e uintptr) *link { return (*link)(addr.Pointer(e)) }

// table is a chained hash table of nbuckets buckets (0 or a power of two),
// each one word: the address of its first entry, 0 when empty. The buckets
// are held in segments of 1<<shift buckets, allocated from the Heap when a
// bucket of theirs first gets an entry; dir is the off-heap array of the
// segments' addresses (0: not allocated yet).
type table struct {
	dir      uintptr
	nbuckets uint64
	shift    uint // log2 of buckets per segment: min(segShift, log2(nbuckets))
	segs     int  // segments allocated
}

func (t *table) nseg() uint64     { return t.nbuckets >> t.shift }
func (t *table) segBytes() uint64 { return wordBytes << t.shift }

// bytes is what the table holds off-heap: directory and segments.
func (t *table) bytes() uint64 {
	if t.nbuckets == 0 {
		return 0
	}
	return t.nseg()*wordBytes + uint64(t.segs)*t.segBytes()
}

func (t *table) segAt(j uint64) *uintptr {
	return (*uintptr)(addr.Pointer(t.dir + uintptr(j)*wordBytes))
}

// slot returns the bucket for hash, or nil when the table or the bucket's
// segment is not allocated (the bucket is empty).
func (t *table) slot(hash uint64) *uintptr {
	if t.nbuckets == 0 {
		return nil
	}
	i := hash & (t.nbuckets - 1)
	seg := *t.segAt(i >> t.shift)
	if seg == 0 {
		return nil
	}
	return (*uintptr)(addr.Pointer(seg + uintptr(i&(1<<t.shift-1))*wordBytes))
}

// slotAlloc is slot, allocating the bucket's segment if needed.
func (t *table) slotAlloc(h *arena.Heap, hash uint64) (*uintptr, error) {
	i := hash & (t.nbuckets - 1)
	sp := t.segAt(i >> t.shift)
	if *sp == 0 {
		p, err := h.Alloc(int(t.segBytes()))
		if err != nil {
			return nil, err
		}
		*sp = uintptr(p) // zeroed by the Heap: every bucket empty
		t.segs++
	}
	return (*uintptr)(addr.Pointer(*sp + uintptr(i&(1<<t.shift-1))*wordBytes)), nil
}

// newTable allocates the directory of an empty table of n buckets (a power
// of two); its segments come later, as buckets fill.
func newTable(h *arena.Heap, n uint64) (table, error) {
	t := table{nbuckets: n, shift: uint(min(segShift, bits.TrailingZeros64(n)))}
	p, err := h.Alloc(int(t.nseg() * wordBytes))
	if err != nil {
		return table{}, err
	}
	t.dir = uintptr(p)
	return t, nil
}

// freeSeg frees segment j of t (which must hold no entries).
func (t *table) freeSeg(h *arena.Heap, j uint64) {
	sp := t.segAt(j)
	if *sp == 0 {
		return
	}
	mustFree(h, *sp, "bucket segment")
	*sp = 0
	t.segs--
}

// release frees the table's segments and directory (not its entries).
func (t *table) release(h *arena.Heap) {
	if t.nbuckets == 0 {
		return
	}
	for j := range t.nseg() {
		t.freeSeg(h, j)
	}
	mustFree(h, t.dir, "bucket directory")
	*t = table{}
}

// mustFree frees memory the map allocated and still owns. The Heap can
// refuse only if the map's own bookkeeping is corrupt or the Heap was
// closed under the map: both break the map's invariants, so it panics,
// naming the address.
func mustFree(h *arena.Heap, a uintptr, what string) {
	if err := h.Free(addr.Pointer(a)); err != nil {
		panic(fmt.Sprintf("container: freeing %s at %#x: %v", what, a, err))
	}
}

// core is the part of a map that does not depend on its key and value
// types: the tables, incremental resizing, counts and the closed state.
// Not safe for concurrent use: the map's owner serialises writers (Set,
// Delete, Close); readers never write to core, except ranging, which is
// atomic so that concurrent readers may range at once.
type core struct {
	h    *arena.Heap
	seed maphash.Seed

	// tab[0] is the table; while resizing it is the old table being
	// drained and tab[1] the new one, which takes every insert.
	tab      [2]table
	resizing bool
	moveIdx  uint64 // next bucket of tab[0] to drain while resizing

	count      int
	entryBytes uint64 // header, key and value bytes of the live entries as they are now (MapStats.EntryBytes)
	hint       uint64 // buckets the first table gets (a shrink may go below)
	closed     bool

	// ranging counts Range calls in progress, to catch a mutation from
	// inside one (it would free entries the walk is standing on).
	ranging atomic.Int32

	resizes  uint64
	maxMoved int
	// resizeErr is the Heap's last refusal of a new table or of a segment
	// a drain step needed; a later success clears it. Reported by
	// MapStats, so a map running over its load for want of memory shows.
	resizeErr error

	// growRetry: after the Heap refused a new table, growth is tried again
	// only once count reaches growRetry (1/16 more entries) or a Delete
	// has freed memory, so that a full heap is not asked for a big table
	// on every insert (under a MemoryLimit each refusal scavenges first).
	growRetry int

	// defrag is Defrag's cursor and counts (defrag.go).
	dfCur defragCursor
}

func (c *core) init(h *arena.Heap, sizeHint int) error {
	if h == nil || sizeHint < 0 {
		return fmt.Errorf("%w: heap %p, size hint %d", ErrInvalidArgument, h, sizeHint)
	}
	c.h = h
	c.seed = maphash.MakeSeed()
	c.hint = bucketsFor(uint64(sizeHint))
	if sizeHint > 0 {
		t, err := newTable(h, c.hint)
		if err != nil {
			return fmt.Errorf("container: new map for %d entries: %w", sizeHint, err)
		}
		c.tab[0] = t
	}
	return nil
}

// bucketsFor returns the table size for n entries at load maxLoad.
func bucketsFor(n uint64) uint64 {
	b := uint64(minBuckets)
	for b < maxBuckets && b*maxLoad < n {
		b <<= 1
	}
	return b
}

// tables returns how many tables a lookup must search.
func (c *core) tables() int {
	if c.resizing {
		return 2
	}
	return 1
}

// writable panics if a Range is in progress, and reports ErrClosed.
func (c *core) writable(op string) error {
	if c.ranging.Load() != 0 {
		panic("container: " + op + " called during Range on the same map")
	}
	if c.closed {
		return ErrClosed
	}
	return nil
}

// insertSlot returns the bucket a new entry with hash goes to, allocating
// the first table or a segment if needed, and starting a growth if the
// insert would pass the load factor. Nothing is changed if it fails.
func (c *core) insertSlot(hash uint64) (*uintptr, error) {
	if c.tab[0].nbuckets == 0 {
		t, err := newTable(c.h, c.hint)
		if err != nil {
			return nil, err
		}
		c.tab[0] = t
	}
	if !c.resizing && uint64(c.count+1) > c.tab[0].nbuckets*maxLoad &&
		c.tab[0].nbuckets < maxBuckets && c.count >= c.growRetry {
		// A refused new table is not the insert's failure: the map goes on
		// at a higher load and tries again later (growRetry).
		// Doubling, or straight to the load factor if refused growths
		// left the table overloaded.
		if !c.startResize(max(c.tab[0].nbuckets*2, bucketsFor(uint64(c.count+1)))) {
			c.growRetry = c.count + c.count/16 + 1
		}
	}
	if !c.resizing {
		return c.tab[0].slotAlloc(c.h, hash)
	}
	p, err := c.tab[1].slotAlloc(c.h, hash)
	if err == nil {
		return p, nil
	}
	// The Heap refused the new table a segment. A bucket of the old table
	// that the drain has not reached yet takes the entry instead (the
	// drain moves it later), so a nearly full heap does not refuse inserts
	// the old table has room for.
	c.resizeErr = err
	if old := &c.tab[0]; hash&(old.nbuckets-1) >= c.moveIdx {
		if p, err := old.slotAlloc(c.h, hash); err == nil {
			return p, nil
		}
	}
	return nil, err
}

// startResize allocates a table of n buckets and starts draining into it.
func (c *core) startResize(n uint64) bool {
	t, err := newTable(c.h, n)
	if err != nil {
		c.resizeErr = err
		return false
	}
	c.resizeErr = nil
	c.tab[1] = t
	c.resizing = true
	c.moveIdx = 0
	c.resizes++
	return true
}

// maybeShrink starts a shrink after a delete left the table sparse.
func (c *core) maybeShrink() {
	c.growRetry = 0 // memory was freed: a refused growth may succeed now
	if c.resizing {
		return
	}
	n := c.tab[0].nbuckets
	if n <= minBuckets || uint64(c.count)*shrinkDiv >= n {
		return
	}
	to := bucketsFor(uint64(c.count) * 2)
	if to < n {
		c.startResize(to)
	}
}

// step drains a bounded part of the old table into the new one (see
// moveEntries). Each Set and Delete calls it once; lookups never do, so
// they never write to the map.
func (c *core) step() {
	if !c.resizing {
		return
	}
	old, nw := &c.tab[0], &c.tab[1]
	segMask := uint64(1)<<old.shift - 1
	moved, visits := 0, 0
	for moved < moveEntries && visits < visitBuckets {
		if c.moveIdx == old.nbuckets {
			old.release(c.h)
			c.tab[0], c.tab[1] = *nw, table{}
			c.resizing = false
			break
		}
		j := c.moveIdx >> old.shift
		seg := *old.segAt(j)
		if seg == 0 { // a segment that never held an entry: skip it whole
			c.moveIdx = (j + 1) << old.shift
			visits++
			continue
		}
		b := (*uintptr)(addr.Pointer(seg + uintptr(c.moveIdx&segMask)*wordBytes))
		if *b == 0 {
			visits++
			c.moveIdx++
			if c.moveIdx&segMask == 0 {
				old.freeSeg(c.h, j) // drained: give its 32 KiB back now
			}
			continue
		}
		ea := *b
		e := linkAt(ea)
		dst, err := nw.slotAlloc(c.h, e.hash)
		if err != nil {
			c.resizeErr = err // try again on the next operation
			break
		}
		*b = e.next
		e.next = *dst
		*dst = ea
		moved++
		c.resizeErr = nil
	}
	c.maxMoved = max(c.maxMoved, moved)
}

// forEach calls f with every entry's address, table by table, bucket by
// bucket, until f returns false. f must not change the map.
func (c *core) forEach(f func(e uintptr) bool) bool {
	for ti := range c.tables() {
		t := &c.tab[ti]
		if t.nbuckets == 0 {
			continue
		}
		for j := range t.nseg() {
			seg := *t.segAt(j)
			if seg == 0 {
				continue
			}
			for i := range uint64(1) << t.shift {
				for e := *(*uintptr)(addr.Pointer(seg + uintptr(i)*wordBytes)); e != 0; {
					next := linkAt(e).next
					if !f(e) {
						return false
					}
					e = next
				}
			}
		}
	}
	return true
}

// close frees every entry and both tables and marks the map closed.
func (c *core) close() error {
	if err := c.writable("Close"); err != nil {
		return err
	}
	c.forEach(func(e uintptr) bool {
		mustFree(c.h, e, "entry")
		return true
	})
	c.tab[0].release(c.h)
	c.tab[1].release(c.h)
	c.resizing = false
	c.count, c.entryBytes = 0, 0
	c.closed = true
	return nil
}

// MapStats describes a map's off-heap footprint. Byte counts are what the
// map's contents need: for EntryBytes the headers, keys and values of the
// live entries as they are now. The Heap rounds each object up to its size
// class, and an entry whose value was overwritten in place by a shorter
// one keeps the memory of the longer (BytesMap.Set): arena.Heap.Stats
// accounts for both (HeapAlloc).
type MapStats struct {
	Entries    int    // live entries
	Buckets    int    // buckets of the table inserts go to (the new one while resizing)
	OldBuckets int    // buckets of the table being drained; 0 unless Resizing
	Resizing   bool   // an incremental grow or shrink is in progress
	TableBytes uint64 // off-heap bytes of bucket directories and segments, both tables
	EntryBytes uint64 // off-heap bytes of entries (headers, keys and values)
	Resizes    uint64 // grows and shrinks started since the map was made
	MaxMoved   int    // most entries one operation moved between tables (at most 16)

	// ResizeErr is the Heap's last refusal (wrapping arena.ErrOutOfMemory,
	// typically) of a new table or of a segment a resize step needed; nil
	// once a later attempt succeeds. While it is set the map works on at
	// a higher load, or with its resize paused.
	ResizeErr error

	// DefragSweeps counts Defrag's completed sweeps over the whole map,
	// DefragMoved the entries it moved (all sweeps).
	DefragSweeps uint64
	DefragMoved  uint64
}

func (c *core) stats() MapStats {
	s := MapStats{
		Entries:    c.count,
		Buckets:    int(c.tab[0].nbuckets),
		Resizing:   c.resizing,
		TableBytes: c.tab[0].bytes() + c.tab[1].bytes(),
		EntryBytes: c.entryBytes,
		Resizes:    c.resizes,
		MaxMoved:   c.maxMoved,
		ResizeErr:  c.resizeErr,

		DefragSweeps: c.dfCur.sweeps,
		DefragMoved:  c.dfCur.moved,
	}
	if c.resizing {
		s.Buckets, s.OldBuckets = int(c.tab[1].nbuckets), int(c.tab[0].nbuckets)
	}
	return s
}
