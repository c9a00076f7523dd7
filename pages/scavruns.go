package pages

import (
	"fmt"
	"math/bits"
)

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
// pages taken and the runs appended. It works a bitmap word at a time, so
// its cost is a few nanoseconds per word and per run taken.
func (a *Allocator) takeChunkRuns(c, quota uint, maxRuns int, maxGap uint, dst []Run) ([]Run, uint, uint) {
	cb := &a.chunks[c]
	// t: the pages chosen, from the top: whole runs while the quotas
	// last, the top part of the last one if pages run out. A run may
	// continue across a word border (open: the piece before ended at
	// bit 0 of the word above).
	var t pageBits
	var got uint
	runs := 0
	open := false
choose:
	for w := chunkWords - 1; w >= 0; w-- {
		v := ^cb.inUse[w] &^ cb.scav[w]
		if v>>(wordBits-1) == 0 {
			open = false
		}
		for v != 0 {
			hi := uint(wordBits - 1 - bits.LeadingZeros64(v))
			var lo uint
			if below := ^v & (1<<hi - 1); below != 0 {
				lo = uint(wordBits - bits.LeadingZeros64(below))
			}
			if !(open && hi == wordBits-1) {
				if runs == maxRuns {
					break choose
				}
				runs++
			}
			n := hi - lo + 1
			if k := quota - got; n > k {
				lo, n = hi+1-k, k
			}
			m := wordMask(lo, n)
			t[w] |= m
			v &^= m
			got += n
			if got == quota {
				break choose
			}
			open = lo == 0
		}
	}
	if got == 0 {
		return dst, 0, 0
	}
	// The chosen runs in address order, merged across short gaps of free
	// (hence released) pages.
	n0 := len(dst)
	for i := uint(0); ; {
		s, ok := t.nextSet(i)
		if !ok {
			break
		}
		e := t.nextClear(s)
		if k := len(dst); k > n0 {
			last := &dst[k-1]
			end := (last.Base-a.chunkAddr(c))/PageSize + last.Pages
			if gap := s - uint(end); gap <= maxGap && cb.inUse.allClear(uint(end), gap) {
				t.setRange(uint(end), gap)
				last.Pages += uintptr(gap + e - s)
				last.Fresh += uintptr(e - s)
				i = e
				continue
			}
		}
		dst = append(dst, Run{Base: a.pageAddr(c*ChunkPages + s), Pages: uintptr(e - s), Fresh: uintptr(e - s)})
		i = e
	}
	var taken, scav uint
	for w := range chunkWords {
		taken += uint(bits.OnesCount64(t[w]))
		scav += uint(bits.OnesCount64(t[w] & cb.scav[w]))
		cb.inUse[w] |= t[w]
		cb.scav[w] &^= t[w]
	}
	a.setLeaf(c, cb.inUse.summarize())
	a.freePages -= taken
	a.scavPages -= scav
	return dst, got, uint(len(dst) - n0)
}

// ReturnRuns gives back runs taken by TakeScavengeRuns: as released
// (scavenged) pages, or, when their release failed, as plain free pages
// that a later call takes again. It checks every run first and changes
// nothing if one is not wholly in use or crosses a chunk border. Runs of
// one chunk that come together in runs are applied as one bitmap mask, so
// the summaries are updated once per chunk, not once per run, and giving
// back a chunk's hundreds of single-page runs stays cheap under the lock.
func (a *Allocator) ReturnRuns(runs []Run, scavenged bool) error {
	for pass := 0; pass < 2; pass++ { // check everything, then apply
		var total uint
		for k := 0; k < len(runs); {
			c, m, next, err := a.chunkMask(runs, k)
			if err != nil {
				return err
			}
			cb := &a.chunks[c]
			lowest := uint(ChunkPages)
			for w := range chunkWords {
				if pass == 0 && cb.inUse[w]&m[w] != m[w] {
					return fmt.Errorf("%w: run in chunk %d word %d", errNotAllocated, c, w)
				}
				if m[w] != 0 {
					lowest = min(lowest, uint(w)*wordBits+uint(bits.TrailingZeros64(m[w])))
				}
				total += uint(bits.OnesCount64(m[w]))
			}
			k = next
			if pass == 0 {
				continue
			}
			for w := range chunkWords {
				cb.inUse[w] &^= m[w]
				if scavenged {
					cb.scav[w] |= m[w]
				}
			}
			a.setLeaf(c, cb.inUse.summarize())
			if !scavenged {
				a.scavMaybe[c/wordBits] |= 1 << (c % wordBits)
				a.scavHint = max(a.scavHint, c+1)
			}
			a.hint = min(a.hint, c*ChunkPages+lowest)
		}
		if pass == 1 {
			a.freePages += total
			if scavenged {
				a.scavPages += total
			}
		}
	}
	return nil
}

// chunkMask checks runs[k] and the runs after it in the same chunk and
// returns their chunk, their pages as a mask, and the index of the first
// run of another chunk.
func (a *Allocator) chunkMask(runs []Run, k int) (c uint, m pageBits, next int, err error) {
	for next = k; next < len(runs); next++ {
		p, n, err := a.pageRange(runs[next].Base, runs[next].Pages)
		if err != nil {
			return 0, m, 0, err
		}
		if next == k {
			c = p / ChunkPages
		}
		if p/ChunkPages != c {
			break
		}
		if (p+n-1)/ChunkPages != c || !a.isGrown(c) {
			return 0, m, 0, fmt.Errorf("%w: [%#x, +%d pages) crosses a chunk border or is not grown", errInvalidRange, runs[next].Base, runs[next].Pages)
		}
		m.setRange(p%ChunkPages, n)
	}
	return c, m, next, nil
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
