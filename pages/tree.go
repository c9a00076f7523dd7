package pages

import (
	"fmt"
	"math/bits"
)

const (
	// fanBits: each summary above the leaves merges 1<<fanBits children.
	// Eight 8-byte summaries are one 64-byte cache line, so a search step
	// reads one line per level.
	fanBits = 3
	fanOut  = 1 << fanBits

	// chunkShift is log2(ChunkPages): a leaf summary covers one chunk.
	chunkShift = 9

	// maxLevels caps the tree: an entry of level 4 covers 2^(9+3*4) = 2^21
	// pages, the most a summary can count (maxSumValue). Reservations over
	// 128 GiB get a top level wider than fanOut, searched through the
	// live bitmap (one bit per top entry) so empty entries cost nothing.
	maxLevels = 5
)

// levelShift is log2 of the pages covered by one summary of level lv.
func levelShift(lv int) uint { return chunkShift + uint(lv)*fanBits }

// find returns the page index of the lowest-addressed run of n free pages
// and a page index ff such that every page below ff is in use: ff equals
// base when base is the lowest free page. ok is false if no run fits. A
// summary that promises a run its children lack is reported as an error
// wrapping errCorrupt (the caller holds the heap lock: it must not panic).
//
// The search walks down from the top level. At each level it looks at
// consecutive entries, carrying the free run that ends at the previous
// entry's high end: a run that crosses entry borders is found without
// descending (its start is known exactly from the end counts); otherwise the
// first entry whose max fits holds the answer, and the walk descends into
// its fanOut children, then finally into the chunk's bitmap.
func (a *Allocator) find(n uint) (base, ff uint, ok bool, err error) {
	top := a.layout.top
	shift := levelShift(top)
	size := uint(1) << shift
	sums := a.levels[top]
	ff = a.hint
	following := true // the walk is still inside the first entry holding a free page

	// Top level: visit the non-empty entries from the hint's entry on.
	var run, runStart uint
	entry := -1
	next := uint(0) // the entry after the last one visited
	j0 := a.hint >> shift
scan:
	for w := j0 / wordBits; w < uint(len(a.live)); w++ {
		x := a.live[w]
		if w == j0/wordBits {
			x &= ^uint64(0) << (j0 % wordBits)
		}
		for x != 0 {
			j := w*wordBits + uint(bits.TrailingZeros64(x))
			x &= x - 1
			if j != next {
				run = 0 // empty entries in between
			}
			next = j + 1
			if following {
				ff = max(ff, j<<shift)
			}
			s, m, e := sums[j].unpack()
			if run == 0 {
				runStart = j << shift
			}
			if run+s >= n {
				return runStart, ff, true, nil
			}
			if m >= n {
				entry = int(j)
				break scan
			}
			following = false // passing over a free page
			if s == size {
				run += size
			} else {
				run = e
				runStart = (j+1)<<shift - e
			}
		}
	}
	if entry < 0 {
		return 0, 0, false, nil
	}

	// Lower levels: the answer lies inside entry.
	for lv := top - 1; lv >= 0; lv-- {
		shift = levelShift(lv)
		size = 1 << shift
		sums = a.levels[lv]
		first := uint(entry) * fanOut
		entry = -1
		run = 0
		for j := first; j < first+fanOut; j++ {
			sj := sums[j]
			if sj == 0 {
				run = 0
				continue
			}
			if following {
				ff = max(ff, j<<shift)
			}
			s, m, e := sj.unpack()
			if run == 0 {
				runStart = j << shift
			}
			if run+s >= n {
				return runStart, ff, true, nil
			}
			if m >= n {
				entry = int(j)
				break
			}
			following = false // passing over a free page
			if s == size {
				run += size
			} else {
				run = e
				runStart = (j+1)<<shift - e
			}
		}
		if entry < 0 {
			return 0, 0, false, fmt.Errorf("%w: level-%d summary %v at %#x promises a run of %d pages its children lack",
				errCorrupt, lv+1, a.levels[lv+1][first/fanOut], a.pageAddr(first<<levelShift(lv)), n)
		}
	}

	// Leaf: the chunk's bitmap.
	c := uint(entry)
	cb := &a.chunks[c].inUse
	i, found := cb.findClear(n, 0)
	if !found {
		return 0, 0, false, corruptChunk(a, c, n)
	}
	if following {
		f, _ := cb.firstClear(0)
		ff = max(ff, c*ChunkPages+f)
	}
	return c*ChunkPages + i, ff, true, nil
}

// setLeaf stores a chunk's new summary and, if it changed, recomputes the
// ancestors.
func (a *Allocator) setLeaf(c uint, s summary) {
	if a.levels[0][c] == s {
		return
	}
	a.levels[0][c] = s
	a.propagate(c, c)
}

// propagate recomputes the ancestors of leaves [c0, c1] level by level,
// stopping early once a level comes out unchanged.
func (a *Allocator) propagate(c0, c1 uint) {
	top := a.layout.top
	if top == 0 {
		a.updateLive(c0, c1)
		return
	}
	for lv := 1; lv <= top; lv++ {
		c0 >>= fanBits
		c1 >>= fanBits
		child := a.levels[lv-1]
		size := uint(1) << levelShift(lv-1)
		sums := a.levels[lv]
		changed := false
		for j := c0; j <= c1; j++ {
			s := mergeSummaries(child[j*fanOut:j*fanOut+fanOut], size)
			if sums[j] != s {
				sums[j] = s
				changed = true
				if lv == top {
					if s != 0 {
						a.live[j/wordBits] |= 1 << (j % wordBits)
					} else {
						a.live[j/wordBits] &^= 1 << (j % wordBits)
					}
				}
			}
		}
		if !changed {
			return
		}
	}
	a.longestStale = true
}

// updateLive refreshes the live bits of top entries [j0, j1]; propagate
// calls it when the top level is the leaf level (at most fanOut chunks).
func (a *Allocator) updateLive(j0, j1 uint) {
	sums := a.levels[a.layout.top]
	for j := j0; j <= j1; j++ {
		if sums[j] != 0 {
			a.live[j/wordBits] |= 1 << (j % wordBits)
		} else {
			a.live[j/wordBits] &^= 1 << (j % wordBits)
		}
	}
	a.longestStale = true
}

// longestFree merges the top level to find the longest free run.
func (a *Allocator) longestFree() uint {
	top := a.layout.top
	size := uint(1) << levelShift(top)
	sums := a.levels[top]
	var best, run, next uint
	for w, x := range a.live {
		for x != 0 {
			j := uint(w)*wordBits + uint(bits.TrailingZeros64(x))
			x &= x - 1
			if j != next {
				run = 0
			}
			next = j + 1
			s, m, e := sums[j].unpack()
			best = max(best, run+s, m)
			if s == size {
				run += size
			} else {
				run = e
			}
		}
	}
	return best
}
