package pages

import "math/bits"

// ScavengeCandidate finds the highest-addressed run of free, unscavenged
// pages, trimmed to at most max pages and aligned to align pages (a power of
// two: base and length are multiples of align), marks it in use so no one
// else takes it, and returns it. ok is false when no such run exists.
//
// Precisely: the run ends at the top of the highest aligned block of align
// pages that is wholly free and unscavenged, and extends down over the
// adjacent such blocks, up to max rounded down to a multiple of align. A
// run never crosses a chunk border, so align must be at most ChunkPages.
// The caller releases the memory with the lock dropped, then gives the run
// back with FreeScavenged.
func (a *Allocator) ScavengeCandidate(max, align uintptr) (base, npages uintptr, ok bool) {
	if a.closed || align == 0 || align&(align-1) != 0 || align > ChunkPages || max < align {
		return 0, 0, false
	}
	al := uint(align)
	limit := uint(max) / al * al
	clean := true // every chunk from c+1 up to the old scavHint has nothing to scavenge
	for c := a.scavHint; c > 0; {
		c, ok = highestSetAtMost(a.scavMaybe, c-1)
		if !ok {
			break
		}
		if clean {
			a.scavHint = c + 1
		}
		if a.levels[0][c].max() < al {
			// No free run (released or not) as long as one block: skip
			// the bitmaps. On a fragmented heap most chunks are like
			// this, and reading the 8-byte summary instead of 128 bytes
			// of bitmap keeps a search for huge pages over a GiB of
			// chunks to a few microseconds under the lock.
			clean = false
			continue
		}
		i, n, any := a.chunks[c].scavengeRun(al, limit)
		if n > 0 {
			p := c*ChunkPages + i
			a.markInUse(p, n)
			return a.pageAddr(p), uintptr(n), true
		}
		if any {
			// Free unscavenged pages remain, but no aligned block: keep
			// the chunk indexed for a smaller alignment.
			clean = false
			continue
		}
		a.scavMaybe[c/64] &^= 1 << (c % 64)
		if clean {
			a.scavHint = c
		}
	}
	if clean {
		a.scavHint = 0
	}
	return 0, 0, false
}

// highestSetAtMost returns the highest set bit of bitmap b at or below i.
func highestSetAtMost(b []uint64, i uint) (uint, bool) {
	w := i / 64
	x := b[w] & (^uint64(0) >> (63 - i%64))
	for x == 0 {
		if w == 0 {
			return 0, false
		}
		w--
		x = b[w]
	}
	return w*64 + 63 - uint(bits.LeadingZeros64(x)), true
}

// scavengeRun finds the highest run of free unscavenged pages in the chunk
// made of aligned blocks of al pages, at most limit pages long (a multiple
// of al). any reports whether the chunk has any free unscavenged page.
func (cb *chunkBits) scavengeRun(al, limit uint) (i, n uint, any bool) {
	// blocks: bit b*al set when block b (pages [b*al, (b+1)*al)) is wholly
	// free and unscavenged.
	var blocks pageBits
	for w := range chunkWords {
		x := ^cb.inUse[w] &^ cb.scav[w]
		if x != 0 {
			any = true
		}
		if al < 64 {
			// Fold so bit j says pages j..j+al-1 qualify, then keep the
			// block starts.
			for s := uint(1); s < al; s <<= 1 {
				x &= x >> s
			}
			x &= blockStarts(al)
		} else if x != ^uint64(0) {
			x = 0
		} else {
			x = 1
		}
		blocks[w] = x
	}
	if !any {
		return 0, 0, false
	}
	if al > 64 { // a block spans al/64 words: all of them must qualify
		wpb := al / 64
		for w := uint(0); w < chunkWords; w += wpb {
			all := uint64(1)
			for k := w; k < w+wpb; k++ {
				all &= blocks[k]
				blocks[k] = 0
			}
			blocks[w] = all
		}
	}
	// Highest block, then extend downwards while blocks qualify.
	top := -1
	for w := chunkWords - 1; w >= 0; w-- {
		if blocks[w] != 0 {
			top = w*64 + 63 - bits.LeadingZeros64(blocks[w])
			break
		}
	}
	if top < 0 {
		return 0, 0, true
	}
	i = uint(top)
	n = al
	for n+al <= limit && i >= al && blocks[(i-al)/64]&(1<<((i-al)%64)) != 0 {
		i -= al
		n += al
	}
	return i, n, true
}

// blockStarts has a bit at every multiple of al (al a power of two < 64).
func blockStarts(al uint) uint64 {
	var m uint64
	for j := uint(0); j < 64; j += al {
		m |= 1 << j
	}
	return m
}
