package pages

import "math/bits"

// Run is a run of pages taken for release by TakeScavengeRuns.
type Run struct {
	Base  uintptr // address of the first page
	Pages uintptr // length in pages
	// Fresh is how many of the run's pages were free and not yet released
	// when it was taken; the others are released pages between two such
	// runs, taken along so that one madvise covers both (see maxGap).
	Fresh uintptr
}

// takeMaxChunks bounds how many chunks one TakeScavengeRuns looks at, so
// its lock hold stays around a microsecond even when the chunks marked as
// maybe holding free unreleased pages turn out to hold none (each look is
// a pass over the chunk's 8+8 bitmap words).
const takeMaxChunks = 16

// maxRunsPerChunk is the most runs a chunk can hold: every other page.
const maxRunsPerChunk = ChunkPages / 2

// TakeScavengeRuns takes free, unreleased pages for release: from the
// highest chunk that has any downwards, every such run of any length (down
// to one page), highest first, until max pages or maxRuns runs are taken
// or takeMaxChunks chunks were looked at. The pages are marked in use so
// nobody allocates them while the caller releases them with the lock
// dropped; the caller then gives them back with ReturnRuns. Runs are
// appended to dst, never cross a chunk border, and within a chunk come in
// address order.
//
// maxGap > 0 lets two runs of a chunk merge into one across a gap of at
// most maxGap pages that are all free and already released: the gap is
// taken too (counted out of Run.Fresh), since a madvise over pages with no
// memory behind them costs next to nothing while a call costs a
// microsecond or more. The gap's pages count as committed until they are
// returned, so a caller that checks committed memory against a limit
// passes 0.
//
// It returns the runs and the number of fresh pages taken (the sum of
// their Fresh).
func (a *Allocator) TakeScavengeRuns(max uintptr, maxRuns int, maxGap uintptr, dst []Run) ([]Run, uintptr) {
	if a.closed || max == 0 || maxRuns <= 0 {
		return dst, 0
	}
	quota, runsLeft := uint(max), maxRuns
	var fresh uintptr
	clean := true // every chunk from c+1 up to the old scavHint has nothing to release
	looked := 0
	for c := a.scavHint; c > 0 && quota > 0 && runsLeft > 0 && looked < takeMaxChunks; looked++ {
		var ok bool
		c, ok = highestSetAtMost(a.scavMaybe, c-1)
		if !ok {
			break
		}
		if clean {
			a.scavHint = c + 1
		}
		var got, n uint
		dst, got, n = a.takeChunkRuns(c, quota, runsLeft, uint(maxGap), dst)
		quota -= got
		runsLeft -= int(n)
		fresh += uintptr(got)
		cb := &a.chunks[c]
		left := false
		for w := range chunkWords {
			if ^cb.inUse[w]&^cb.scav[w] != 0 {
				left = true
				break
			}
		}
		if left {
			clean = false
			continue
		}
		a.scavMaybe[c/wordBits] &^= 1 << (c % wordBits)
		if clean {
			a.scavHint = c
		}
	}
	if clean && a.scavHint > 0 {
		if _, ok := highestSetAtMost(a.scavMaybe, a.scavHint-1); !ok {
			a.scavHint = 0
		}
	}
	return dst, fresh
}

// takeChunkRuns takes up to quota free unreleased pages of chunk c in at
// most maxRuns runs, highest first, merging runs across released gaps of
// at most maxGap pages, and appends them to dst. It returns the fresh
// pages taken and the runs appended.
func (a *Allocator) takeChunkRuns(c, quota uint, maxRuns int, maxGap uint, dst []Run) ([]Run, uint, uint) {
	cb := &a.chunks[c]
	// The chunk's runs of free unreleased pages, in address order.
	type span16 struct{ i, n uint16 }
	var runs [maxRunsPerChunk]span16
	nr := 0
	var x pageBits
	for w := range chunkWords {
		x[w] = ^cb.inUse[w] &^ cb.scav[w]
	}
	for i := uint(0); i < ChunkPages; {
		s, ok := x.nextSet(i)
		if !ok {
			break
		}
		e := x.nextClear(s)
		runs[nr] = span16{uint16(s), uint16(e - s)}
		nr++
		i = e
	}
	if nr == 0 {
		return dst, 0, 0
	}
	// Choose from the top: whole runs while the quotas last, the top part
	// of the last one if pages run out.
	first := nr
	var got uint
	for first > 0 && got < quota && nr-first < maxRuns {
		r := &runs[first-1]
		if k := quota - got; uint(r.n) > k {
			r.i += r.n - uint16(k)
			r.n = uint16(k)
		}
		got += uint(r.n)
		first--
	}
	chosen := runs[first:nr]
	// Merge across short gaps of free released pages.
	merged := chosen[:1]
	for _, r := range chosen[1:] {
		last := &merged[len(merged)-1]
		end := uint(last.i) + uint(last.n)
		gap := uint(r.i) - end
		if gap <= maxGap && cb.inUse.allClear(end, gap) {
			last.n = uint16(uint(r.i) + uint(r.n) - uint(last.i))
			continue
		}
		merged = append(merged, r)
	}
	var taken, scav uint
	for _, r := range merged {
		i, n := uint(r.i), uint(r.n)
		s := cb.scav.countRange(i, n)
		cb.scav.clearRange(i, n)
		cb.inUse.setRange(i, n)
		dst = append(dst, Run{Base: a.pageAddr(c*ChunkPages + i), Pages: uintptr(n), Fresh: uintptr(n - s)})
		taken += n
		scav += s
	}
	a.setLeaf(c, cb.inUse.summarize())
	a.freePages -= taken
	a.scavPages -= scav
	return dst, got, uint(len(merged))
}

// ReturnRuns gives back runs taken by TakeScavengeRuns: as released
// (scavenged) pages, or, when their release failed, as plain free pages
// that a later call takes again. It checks every run first and changes
// nothing if one is not wholly in use or crosses a chunk border. The
// summaries are updated once per chunk, not once per run, so giving back
// a chunk's hundreds of single-page runs stays cheap under the lock.
func (a *Allocator) ReturnRuns(runs []Run, scavenged bool) error {
	for _, r := range runs {
		p, n, err := a.pageRange(r.Base, r.Pages)
		if err != nil {
			return err
		}
		if p/ChunkPages != (p+n-1)/ChunkPages || !a.rangeIs(p, n, true) {
			return errNotAllocated
		}
	}
	var total uint
	lowest := a.hint
	for k := 0; k < len(runs); {
		p0, _, _ := a.pageRange(runs[k].Base, runs[k].Pages)
		c := p0 / ChunkPages
		cb := &a.chunks[c]
		for ; k < len(runs); k++ {
			p, n, _ := a.pageRange(runs[k].Base, runs[k].Pages)
			if p/ChunkPages != c {
				break
			}
			i := p % ChunkPages
			cb.inUse.clearRange(i, n)
			if scavenged {
				cb.scav.setRange(i, n)
			}
			total += n
			lowest = min(lowest, p)
		}
		a.setLeaf(c, cb.inUse.summarize())
		if !scavenged {
			a.scavMaybe[c/wordBits] |= 1 << (c % wordBits)
			a.scavHint = max(a.scavHint, c+1)
		}
	}
	a.freePages += total
	if scavenged {
		a.scavPages += total
	}
	a.hint = lowest
	return nil
}

// nextSet returns the lowest set bit at or above i.
func (b *pageBits) nextSet(i uint) (uint, bool) {
	for w := i / wordBits; w < chunkWords; w++ {
		x := b[w]
		if w == i/wordBits {
			x &= ^uint64(0) << (i % wordBits)
		}
		if x != 0 {
			return w*wordBits + uint(bits.TrailingZeros64(x)), true
		}
	}
	return 0, false
}

// nextClear returns the lowest clear bit at or above i, or ChunkPages.
func (b *pageBits) nextClear(i uint) uint {
	if j, ok := b.firstClear(i); ok {
		return j
	}
	return ChunkPages
}
