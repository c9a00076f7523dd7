package pages

import (
	"fmt"
	"math/bits"

	"github.com/offheap/offheap/mmap"
)

// Allocator tracks the pages of one reservation [base, base+size).
// It is NOT safe for concurrent use: the caller holds the heap lock,
// except around CommitGrow, which takes the metadata's own lock (meta.mu)
// and may run without the heap lock, concurrently with the other methods.
//
// Pages are named inside by their index from base. Every array below lives
// in the metadata mapping (meta), off the Go heap.
type Allocator struct {
	base    uintptr // first byte of the reservation
	npages  uint    // pages in the reservation
	nchunks uint

	layout metaLayout
	meta   *metaRegion // its own lock; see metaRegion

	grown     []uint64             // bit c: chunk c is grown
	scavMaybe []uint64             // bit c: chunk c may hold free unscavenged pages
	live      []uint64             // bit j: top-level summary j is non-zero
	levels    [maxLevels][]summary // levels[0]: one per chunk; levels[layout.top]: coarsest
	chunks    []chunkBits

	// hint: every page with a lower index is in use or not grown, so a
	// search starts here. Allocation moves it up, freeing and growing move
	// it down.
	hint uint
	// scavHint: no chunk at or above this index has its scavMaybe bit set.
	scavHint uint

	grownPages, freePages, scavPages uint // Stats, kept up to date
	longest                          uint // LongestFree, valid unless longestStale
	longestStale                     bool
	closed                           bool
}

// New makes an allocator for a reservation; base and size are ChunkBytes
// aligned. Metadata is reserved off the Go heap and becomes resident only
// for grown chunks. Its system calls go through k (nil: the real kernel),
// so a heap's Config.Kernel reaches them too: a metadata commit the
// kernel refuses fails CommitGrow with an error wrapping *mmap.OpError,
// and leaves the allocator unchanged.
func New(base, size uintptr, k mmap.Kernel) (*Allocator, error) {
	return newAllocatorKernel(base, size, maxLevels, k)
}

// newAllocator is New with the number of summary levels capped at
// levelCap; tests use a low cap to get a wide top level from a small
// reservation.
func newAllocator(base, size uintptr, levelCap int) (*Allocator, error) {
	return newAllocatorKernel(base, size, levelCap, nil)
}

// newAllocatorKernel is newAllocator with the metadata mapped through k
// (nil: the real kernel); tests pass a fault injector.
func newAllocatorKernel(base, size uintptr, levelCap int, k mmap.Kernel) (*Allocator, error) {
	if base == 0 || size == 0 || base%ChunkBytes != 0 || size%ChunkBytes != 0 || base+size < base {
		return nil, fmt.Errorf("%w: reservation [%#x, +%#x)", errInvalidRange, base, size)
	}
	nchunks := uint(size / ChunkBytes)
	osPage := mmap.PageSize()
	l := newMetaLayout(nchunks, osPage, levelCap)
	meta, err := newMetaRegion(l.size, osPage, k)
	if err != nil {
		return nil, err
	}
	meta.mu.Lock()
	err = meta.commitLocked(0, l.eager)
	meta.mu.Unlock()
	if err != nil {
		_ = meta.release()
		return nil, err
	}
	a := &Allocator{
		base:    base,
		npages:  nchunks * ChunkPages,
		nchunks: nchunks,
		layout:  l,
		meta:    meta,
	}
	a.grown = meta.words(l.grownOff, bitmapWords(nchunks))
	a.scavMaybe = meta.words(l.scavOff, bitmapWords(nchunks))
	a.live = meta.words(l.liveOff, bitmapWords(l.levelLen[l.top]))
	for lv := 0; lv <= l.top; lv++ {
		a.levels[lv] = meta.summaries(l.levelOff[lv], l.levelLen[lv])
	}
	a.chunks = meta.chunks(l.chunkOff, nchunks)
	return a, nil
}

// Close releases the metadata. Later calls fail with errClosed or report
// nothing. If the unmap fails the allocator is closed all the same, but its
// metadata stays mapped and recorded: Close may be retried, and the retry
// unmaps it. Only a Close after a successful one returns errClosed.
func (a *Allocator) Close() error {
	if a.closed {
		if a.meta.m == nil {
			return errClosed
		}
		return a.meta.release()
	}
	a.closed = true
	a.grown, a.scavMaybe, a.live, a.chunks = nil, nil, nil, nil
	a.levels = [maxLevels][]summary{}
	a.grownPages, a.freePages, a.scavPages, a.longest = 0, 0, 0, 0
	return a.meta.release()
}

func (a *Allocator) chunkAddr(c uint) uintptr { return a.base + uintptr(c)*ChunkBytes }
func (a *Allocator) pageAddr(p uint) uintptr  { return a.base + uintptr(p)<<pageShift }

func (a *Allocator) isGrown(c uint) bool { return a.grown[c/wordBits]&(1<<(c%wordBits)) != 0 }

// pageRange converts an address range to page indices, checking alignment
// and bounds without overflow.
func (a *Allocator) pageRange(base, npages uintptr) (uint, uint, error) {
	if a.closed {
		return 0, 0, errClosed
	}
	if npages == 0 || base < a.base || base%PageSize != 0 ||
		(base-a.base)>>pageShift >= uintptr(a.npages) || npages > uintptr(a.npages)-(base-a.base)>>pageShift {
		return 0, 0, fmt.Errorf("%w: [%#x, +%d pages)", errInvalidRange, base, npages)
	}
	return uint((base - a.base) >> pageShift), uint(npages), nil
}

// Grow makes [base, base+npages*PageSize) allocatable; chunk aligned,
// within the reservation, not grown before. New pages are FreeScavenged.
// The range's metadata must be committed already, by CommitGrow: Grow runs
// under the heap lock and makes no system call, it only sets bits and
// summaries. Metadata not committed is the caller's mistake:
// errNotCommitted, and nothing changes.
func (a *Allocator) Grow(base, npages uintptr) error {
	p, n, err := a.pageRange(base, npages)
	if err != nil {
		return err
	}
	if p%ChunkPages != 0 || n%ChunkPages != 0 {
		return fmt.Errorf("%w: grow [%#x, +%d pages) is not chunk aligned", errInvalidRange, base, npages)
	}
	c0, c1 := p/ChunkPages, (p+n)/ChunkPages
	for c := c0; c < c1; c++ {
		if a.isGrown(c) {
			return fmt.Errorf("%w: chunk %#x", errAlreadyGrown, a.chunkAddr(c))
		}
	}
	if !a.metaCommitted(c0, c1) {
		return fmt.Errorf("%w: grow [%#x, +%d pages)", errNotCommitted, base, npages)
	}
	full := packSummary(ChunkPages, ChunkPages, ChunkPages)
	for c := c0; c < c1; c++ {
		a.grown[c/wordBits] |= 1 << (c % wordBits)
		cb := &a.chunks[c]
		cb.inUse = pageBits{}
		cb.scav = pageBits{^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)}
		a.levels[0][c] = full
	}
	a.propagate(c0, c1-1)
	a.grownPages += n
	a.freePages += n
	a.scavPages += n
	a.hint = min(a.hint, p)
	return nil
}

// Alloc finds the lowest-addressed run of npages free pages (first fit),
// marks it in use, and returns its base and how many of its pages were
// scavenged (their scavenged bits are cleared). ErrNoSpace if none fits.
func (a *Allocator) Alloc(npages uintptr) (base, scav uintptr, err error) {
	if a.closed {
		return 0, 0, errClosed
	}
	if npages == 0 || npages > uintptr(a.npages) {
		return 0, 0, fmt.Errorf("%w: alloc of %d pages", errInvalidRange, npages)
	}
	n := uint(npages)
	p, ff, ok, err := a.findFromHint(n)
	if err != nil {
		return 0, 0, err
	}
	if !ok {
		return 0, 0, fmt.Errorf("%w: %d pages", ErrNoSpace, npages)
	}
	s := a.markInUse(p, n)
	if p == ff {
		a.hint = p + n
	} else {
		a.hint = ff
	}
	return a.pageAddr(p), uintptr(s), nil
}

// corruptChunk is the error for chunk c, whose summary promises a run of n
// pages its bitmap lacks. The allocator reports corruption as an error,
// not a panic: its caller holds the heap lock, and panics once it is
// released.
func corruptChunk(a *Allocator, c, n uint) error {
	return fmt.Errorf("%w: chunk %#x summary %v promises a run of %d pages its bitmap lacks", errCorrupt, a.chunkAddr(c), a.levels[0][c], n)
}

// findFromHint is find with a fast path: a run that fits inside the chunk
// holding the hint is the first fit (nothing below the hint is free), found
// from its bitmap alone, without walking the tree.
func (a *Allocator) findFromHint(n uint) (p, ff uint, ok bool, err error) {
	c := a.hint / ChunkPages
	if n <= ChunkPages && c < a.nchunks && a.isGrown(c) && a.levels[0][c].max() >= n {
		cb := &a.chunks[c].inUse
		off := a.hint % ChunkPages
		i, found := cb.findClear(n, off)
		if !found {
			return 0, 0, false, corruptChunk(a, c, n)
		}
		f := i
		if n > 1 {
			f, _ = cb.firstClear(off)
		}
		return c*ChunkPages + i, c*ChunkPages + f, true, nil
	}
	return a.find(n)
}

// allocRange marks the given free run in use; errAlreadyInUse (state
// unchanged) if any page is not free.
func (a *Allocator) allocRange(base, npages uintptr) (scav uintptr, err error) {
	p, n, err := a.pageRange(base, npages)
	if err != nil {
		return 0, err
	}
	if !a.rangeIs(p, n, false) {
		return 0, fmt.Errorf("%w: [%#x, +%d pages)", errAlreadyInUse, base, npages)
	}
	s := a.markInUse(p, n)
	if p == a.hint {
		a.hint = p + n
	}
	return uintptr(s), nil
}

// Free returns an in-use run; its pages become Free (not scavenged).
// errNotAllocated (state unchanged) if any page is not in use.
func (a *Allocator) Free(base, npages uintptr) error {
	return a.free(base, npages, false)
}

// FreeScavenged is Free, but the pages become FreeScavenged.
func (a *Allocator) FreeScavenged(base, npages uintptr) error {
	return a.free(base, npages, true)
}

func (a *Allocator) free(base, npages uintptr, scavenged bool) error {
	p, n, err := a.pageRange(base, npages)
	if err != nil {
		return err
	}
	if !a.rangeIs(p, n, true) {
		return fmt.Errorf("%w: [%#x, +%d pages)", errNotAllocated, base, npages)
	}
	a.markFree(p, n, scavenged)
	return nil
}

// rangeIs reports whether pages [p, p+n) are all grown and all in use
// (inUse) or all free.
func (a *Allocator) rangeIs(p, n uint, inUse bool) bool {
	for n > 0 {
		c, i := p/ChunkPages, p%ChunkPages
		k := min(ChunkPages-i, n)
		if !a.isGrown(c) {
			return false
		}
		b := &a.chunks[c].inUse
		if inUse && !b.allSet(i, k) || !inUse && !b.allClear(i, k) {
			return false
		}
		p += k
		n -= k
	}
	return true
}

// markInUse allocates the free pages [p, p+n), clears their scavenged bits,
// updates summaries and counts, and returns how many were scavenged.
func (a *Allocator) markInUse(p, n uint) uint {
	c0 := p / ChunkPages
	c := c0
	var scav uint
	changed := false
	for left := n; left > 0; c++ {
		old := a.levels[0][c]
		i := p % ChunkPages
		k := min(ChunkPages-i, left)
		cb := &a.chunks[c]
		if k == ChunkPages {
			for w := range cb.scav {
				scav += uint(bits.OnesCount64(cb.scav[w]))
			}
			cb.inUse = pageBits{^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)}
			cb.scav = pageBits{}
			a.levels[0][c] = 0
		} else {
			scav += cb.scav.countRange(i, k)
			cb.scav.clearRange(i, k)
			a.levels[0][c] = a.leafAfterAlloc(c, i, k)
		}
		changed = changed || a.levels[0][c] != old
		p += k
		left -= k
	}
	if changed {
		a.propagate(c0, c-1)
	}
	a.freePages -= n
	a.scavPages -= scav
	return scav
}

// leafAfterAlloc sets in-use bits [i, i+k) of chunk c (all free) and
// returns the chunk's new summary, computed from the old one where it can:
// only if the run it cut was a longest run must the bitmap be rescanned.
func (a *Allocator) leafAfterAlloc(c, i, k uint) summary {
	b := &a.chunks[c].inUse
	s, m, e := a.levels[0][c].unpack()
	lo, hi := b.clearBelow(i), b.clearAbove(i+k)
	b.setRange(i, k)
	if hi-lo == ChunkPages { // the chunk was wholly free
		return packSummary(i, max(i, ChunkPages-i-k), ChunkPages-i-k)
	}
	if hi-lo >= m {
		return b.summarize()
	}
	if lo == 0 {
		s = i
	}
	if hi == ChunkPages {
		e = ChunkPages - i - k
	}
	return packSummary(s, m, e)
}

// markFree frees the in-use pages [p, p+n), optionally as scavenged.
func (a *Allocator) markFree(p, n uint, scavenged bool) {
	c0 := p / ChunkPages
	c := c0
	full := packSummary(ChunkPages, ChunkPages, ChunkPages)
	changed := false
	for left, q := n, p; left > 0; c++ {
		old := a.levels[0][c]
		i := q % ChunkPages
		k := min(ChunkPages-i, left)
		cb := &a.chunks[c]
		if k == ChunkPages {
			cb.inUse = pageBits{}
			if scavenged {
				cb.scav = pageBits{^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)}
			}
			a.levels[0][c] = full
		} else {
			if scavenged {
				cb.scav.setRange(i, k)
			}
			a.levels[0][c] = a.leafAfterFree(c, i, k)
		}
		changed = changed || a.levels[0][c] != old
		if !scavenged {
			a.scavMaybe[c/wordBits] |= 1 << (c % wordBits)
		}
		q += k
		left -= k
	}
	if changed {
		a.propagate(c0, c-1)
	}
	if !scavenged {
		a.scavHint = max(a.scavHint, c)
	} else {
		a.scavPages += n
	}
	a.freePages += n
	a.hint = min(a.hint, p)
}

// leafAfterFree clears in-use bits [i, i+k) of chunk c (all set) and returns
// the chunk's new summary: the freed pages join their free neighbours into
// one run, which may extend the start or end run and may be a new longest.
func (a *Allocator) leafAfterFree(c, i, k uint) summary {
	b := &a.chunks[c].inUse
	s, m, e := a.levels[0][c].unpack()
	b.clearRange(i, k)
	lo, hi := b.clearBelow(i), b.clearAbove(i+k)
	if lo == 0 {
		s = hi
	}
	if hi == ChunkPages {
		e = ChunkPages - lo
	}
	return packSummary(s, max(m, hi-lo), e)
}

// State reports the state of the page containing addr.
func (a *Allocator) State(addr uintptr) State {
	if a.closed || addr < a.base || (addr-a.base)>>pageShift >= uintptr(a.npages) {
		return NotGrown
	}
	p := uint((addr - a.base) >> pageShift)
	c, i := p/ChunkPages, p%ChunkPages
	if !a.isGrown(c) {
		return NotGrown
	}
	cb := &a.chunks[c]
	switch {
	case cb.inUse[i/wordBits]&(1<<(i%wordBits)) != 0:
		return InUse
	case cb.scav[i/wordBits]&(1<<(i%wordBits)) != 0:
		return FreeScavenged
	}
	return Free
}

// Stats reports the page counts. Grown, Free and Scavenged are kept as
// operations go; LongestFree is recomputed from the top summary level (at
// most a few dozen entries) when an operation changed it since the last
// call.
func (a *Allocator) Stats() Stats {
	if a.closed {
		return Stats{}
	}
	if a.longestStale {
		a.longest = a.longestFree()
		a.longestStale = false
	}
	return Stats{
		Grown:       uintptr(a.grownPages),
		Free:        uintptr(a.freePages),
		Scavenged:   uintptr(a.scavPages),
		LongestFree: uintptr(a.longest),
	}
}
